"""``python -m services.shipping_api serve|migrate|downgrade|purge-request-log``"""

from __future__ import annotations

from libs.common.cli import main_for, run_cli
from services.shipping_api.app import MIGRATIONS_DIR
from services.shipping_api.models import RequestLog
from services.shipping_api.settings import ShippingSettings


def main() -> int:
    return run_cli(
        settings_factory=ShippingSettings,
        app_factory="services.shipping_api.app:create_app",
        migrations_dir=MIGRATIONS_DIR,
        request_log_model=RequestLog,
    )


if __name__ == "__main__":
    main_for(main)
