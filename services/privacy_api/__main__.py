"""``python -m services.privacy_api serve|migrate|downgrade|purge-request-log``"""

from __future__ import annotations

from libs.common.cli import main_for, run_cli
from services.privacy_api.app import MIGRATIONS_DIR
from services.privacy_api.models import RequestLog
from services.privacy_api.settings import PrivacySettings


def main() -> int:
    return run_cli(
        settings_factory=PrivacySettings,
        app_factory="services.privacy_api.app:create_app",
        migrations_dir=MIGRATIONS_DIR,
        request_log_model=RequestLog,
    )


if __name__ == "__main__":
    main_for(main)
