"""KYC use cases, re-exported by noun."""

from kyc.services.cases import (
    kyc_case_approve,
    kyc_case_missing,
    kyc_case_open,
    kyc_case_reject,
    kyc_case_request_resubmission,
    kyc_case_start_review,
    kyc_case_submit,
    kyc_cases_expire,
    kyc_document_add,
)
from kyc.services.compliance import (
    client_compliance,
    client_details_update,
    client_risk_assess,
    client_screen,
    compliance_hold_place,
    compliance_hold_release,
    disclosure_accept,
    questionnaire_submit,
)

__all__ = [
    "client_compliance",
    "client_details_update",
    "client_risk_assess",
    "client_screen",
    "compliance_hold_place",
    "compliance_hold_release",
    "disclosure_accept",
    "kyc_case_approve",
    "kyc_case_missing",
    "kyc_case_open",
    "kyc_case_reject",
    "kyc_case_request_resubmission",
    "kyc_case_start_review",
    "kyc_case_submit",
    "kyc_cases_expire",
    "kyc_document_add",
    "questionnaire_submit",
]
