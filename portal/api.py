"""The integrators' door (/api/v1/). Same services as the portal; session auth for now."""

from __future__ import annotations

from allauth.mfa.utils import is_mfa_enabled
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    referral_code = serializers.CharField(allow_blank=True)
    mfa_enabled = serializers.BooleanField()
    is_staff = serializers.BooleanField()


class MeView(APIView):
    """The signed-in user's identity."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        profile = getattr(user, "client_profile", None)
        payload = {
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "referral_code": profile.referral_code if profile else "",
            "mfa_enabled": is_mfa_enabled(user),
            "is_staff": user.is_staff,
        }
        return Response(MeSerializer(payload).data)
