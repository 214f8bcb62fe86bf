from django.apps import AppConfig


class IbConfig(AppConfig):
    name = "ib"
    verbose_name = "IB program"
    default = True

    def ready(self) -> None:
        # Receivers only enqueue work or call one service; the logic lives in ib.services (STYLE.md).
        from allauth.account.signals import user_signed_up

        from ib import receivers
        from mt5bridge.signals import deals_imported

        deals_imported.connect(receivers.on_deals_imported, dispatch_uid="ib.on_deals_imported")
        user_signed_up.connect(receivers.on_user_signed_up, dispatch_uid="ib.on_user_signed_up")
