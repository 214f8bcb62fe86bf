"""Client onboarding: personal details, appropriateness test, risk disclosure, documents, submission, status.

Thin: every write is a service of `crm` or `kyc`; these views only validate forms and render.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from crm.models import ClientProfile
from kyc import questionnaire
from kyc.models import KycCase, KycDocument
from kyc.services import (
    client_compliance,
    client_details_update,
    disclosure_accept,
    kyc_case_missing,
    kyc_case_open,
    kyc_case_submit,
    kyc_document_add,
    questionnaire_submit,
)


class DetailsForm(forms.ModelForm):
    country = forms.CharField(max_length=60, label="Country of residence (two-letter code, e.g. GB)")

    class Meta:
        model = ClientProfile
        fields = ["legal_name", "date_of_birth", "country", "address_line", "city", "postcode", "phone"]
        labels = {"legal_name": "Full legal name (as on your ID)", "address_line": "Address"}
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("legal_name", "date_of_birth", "country", "address_line", "city", "phone"):
            self.fields[name].required = True

    def clean_country(self) -> str:
        value = self.cleaned_data["country"].strip().upper()
        if len(value) != 2 or not value.isalpha():
            raise forms.ValidationError("Use the two-letter country code, e.g. GB, DE, FR.")
        return value

    def clean_date_of_birth(self):
        from datetime import date

        value = self.cleaned_data["date_of_birth"]
        today = date.today()
        age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
        if age < 18:
            raise forms.ValidationError("You must be at least 18 years old.")
        if age > 120:
            raise forms.ValidationError("Please check the date of birth.")
        return value


class QuestionnaireForm(forms.Form):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for question in questionnaire.QUESTIONS:
            self.fields[question.key] = forms.ChoiceField(
                label=question.text, choices=[(v, label) for v, label, _ in question.options], widget=forms.RadioSelect
            )


class DocumentForm(forms.Form):
    doc_type = forms.ChoiceField(label="Document", choices=KycDocument.Type.choices)
    file = forms.FileField(label="File (JPEG, PNG or PDF, up to 10 MB)")
    expires_on = forms.DateField(
        label="Expiry date (if the document has one)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


def _steps(request: HttpRequest, case: KycCase | None) -> list[dict]:
    profile = ClientProfile.objects.filter(user=request.user).first()
    compliance = client_compliance(user=request.user)
    documents = list(case.documents.all()) if case else []
    return [
        {
            "title": "Personal details",
            "done": bool(profile and profile.details_complete),
            "url": "portal:verification_details",
        },
        {
            "title": "Appropriateness questionnaire",
            "done": compliance.questionnaire_score is not None,
            "url": "portal:verification_questionnaire",
        },
        {
            "title": "Risk disclosure",
            "done": compliance.disclosure_version == settings.KYC_DISCLOSURE_VERSION,
            "url": "portal:verification_disclosure",
        },
        {"title": "Documents", "done": bool(documents), "url": "portal:verification_documents"},
    ]


@login_required
def status(request: HttpRequest) -> HttpResponse:
    compliance = client_compliance(user=request.user)
    latest = KycCase.objects.filter(user=request.user).select_related("target_level").first()
    try:
        case = kyc_case_open(user=request.user)
    except ApplicationError:
        case = None  # fully verified: nothing more to ask for
    context = {
        "compliance": compliance,
        "case": case,
        "latest": latest,
        "steps": _steps(request, case),
        "missing": kyc_case_missing(case=case) if case else [],
        "editable": bool(case and case.state in (KycCase.State.DRAFT, KycCase.State.RESUBMISSION_REQUESTED)),
    }
    return render(request, "portal/verification/status.html", context)


@login_required
def details(request: HttpRequest) -> HttpResponse:
    profile, _ = ClientProfile.objects.get_or_create(user=request.user)
    form = DetailsForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        try:
            client_details_update(user=request.user, **{f: form.cleaned_data[f] for f in DetailsForm.Meta.fields})
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Your details are saved.")
            return redirect("portal:verification")
    return render(request, "portal/verification/form.html", {"form": form, "title": "Personal details"})


@login_required
def questionnaire_view(request: HttpRequest) -> HttpResponse:
    form = QuestionnaireForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = questionnaire_submit(user=request.user, answers=form.cleaned_data)
        (messages.success if outcome.suitable else messages.warning)(request, outcome.message)
        return redirect("portal:verification")
    return render(
        request,
        "portal/verification/form.html",
        {
            "form": form,
            "title": "Appropriateness questionnaire",
            "intro": "These questions help us judge whether leveraged trading suits you. Answer honestly.",
        },
    )


@login_required
def disclosure(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("accept") != "yes":
            messages.error(request, "Please confirm that you have read and understood the risk disclosure.")
        else:
            try:
                disclosure_accept(user=request.user, version=request.POST.get("version", ""))
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Thank you. Your acceptance is recorded.")
                return redirect("portal:verification")
    return render(request, "portal/verification/disclosure.html", {"version": settings.KYC_DISCLOSURE_VERSION})


def _open_case_or_status(request: HttpRequest) -> KycCase | None:
    try:
        return kyc_case_open(user=request.user)
    except ApplicationError as exc:  # fully verified: nothing to upload or submit
        messages.info(request, exc.message)
        return None


@login_required
def documents(request: HttpRequest) -> HttpResponse:
    case = _open_case_or_status(request)
    if case is None:
        return redirect("portal:verification")
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            kyc_document_add(
                case=case,
                user=request.user,
                doc_type=form.cleaned_data["doc_type"],
                name=upload.name,
                content=upload,
                expires_on=form.cleaned_data["expires_on"],
            )
        except ApplicationError as exc:
            form.add_error("file", exc.message)
        else:
            messages.success(request, "Document uploaded.")
            return redirect("portal:verification_documents")
    context = {"form": form, "case": case, "documents": case.documents.all()}
    return render(request, "portal/verification/documents.html", context)


@login_required
@require_POST
def submit(request: HttpRequest) -> HttpResponse:
    case = _open_case_or_status(request)
    if case is None:
        return redirect("portal:verification")
    try:
        kyc_case_submit(case=case, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Thank you. We are reviewing your documents and will email you.")
    return redirect("portal:verification")
