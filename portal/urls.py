from django.urls import path

from portal import accounts, money, verification, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("portal/", views.dashboard, name="dashboard"),
    path("portal/wallet/", views.wallet, name="wallet"),
    path("portal/deposit/", money.deposit, name="deposit"),
    path("portal/withdraw/", money.withdraw, name="withdraw"),
    path("portal/withdrawals/<int:withdrawal_id>/cancel/", money.withdrawal_cancel_view, name="withdrawal_cancel"),
    path("portal/history/", money.history, name="history"),
    path("portal/transfer/", money.transfer, name="transfer"),
    path("portal/deposits/<int:deposit_id>/", money.deposit_detail, name="deposit_detail"),
    path("portal/verification/", verification.status, name="verification"),
    path("portal/verification/details/", verification.details, name="verification_details"),
    path("portal/verification/questionnaire/", verification.questionnaire_view, name="verification_questionnaire"),
    path("portal/verification/disclosure/", verification.disclosure, name="verification_disclosure"),
    path("portal/verification/documents/", verification.documents, name="verification_documents"),
    path("portal/verification/submit/", verification.submit, name="verification_submit"),
    path("portal/accounts/", accounts.account_list, name="account_list"),
    path("portal/accounts/open/", accounts.account_open, name="account_open"),
    path("portal/accounts/<int:account_id>/", accounts.account_detail, name="account_detail"),
    path("portal/accounts/<int:account_id>/refresh/", accounts.account_refresh, name="account_refresh"),
    path("portal/accounts/<int:account_id>/leverage/", accounts.account_leverage, name="account_leverage"),
    path("portal/accounts/<int:account_id>/password/", accounts.account_password, name="account_password"),
]
