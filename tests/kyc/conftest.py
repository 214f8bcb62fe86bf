from __future__ import annotations

from datetime import date

import pytest

from crm.services import client_profile_update
from kyc.services import disclosure_accept, kyc_case_open, kyc_document_add, questionnaire_submit
from tests.crm.factories import ClientFactory, make_staff
from tests.kyc.factories import jpeg_bytes

GOOD_ANSWERS = {
    "experience": "weekly",
    "margin_call": "stop_out",
    "leverage_loss": "100",
    "education": "course",
    "loss_capacity": "some",
}


@pytest.fixture(autouse=True)
def _private_documents(settings, tmp_path):
    settings.KYC_DOCUMENT_ROOT = tmp_path / "kyc"


def onboard(user, *, documents=("passport",)):
    """Everything a client does before submitting: details, questionnaire, disclosure, documents."""
    from django.conf import settings

    client_profile_update(
        user=user,
        legal_name="Jane Example",
        date_of_birth=date(1990, 5, 17),
        country="GB",
        address_line="1 High Street",
        city="London",
        postcode="N1 1AA",
        phone="+44 20 7946 0000",
    )
    questionnaire_submit(user=user, answers=GOOD_ANSWERS)
    disclosure_accept(user=user, version=settings.KYC_DISCLOSURE_VERSION)
    case = kyc_case_open(user=user)
    for doc_type in documents:
        kyc_document_add(
            case=case,
            user=user,
            doc_type=doc_type,
            name=f"{doc_type}.jpg",
            content=jpeg_bytes(),
            expires_on=date(2031, 1, 1),
        )
    return case


@pytest.fixture
def client_user(db):
    return ClientFactory()


@pytest.fixture
def officer(db):
    user, _ = make_staff("Compliance")
    return user
