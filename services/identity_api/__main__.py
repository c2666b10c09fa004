"""``python -m services.identity_api serve|migrate|downgrade|purge-request-log|create-staff|
rotate-signing-key|purge-expired|reencrypt-fields``"""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.cli import main_for, run_cli
from services.identity_api.app import MIGRATIONS_DIR
from services.identity_api.cli import COMMANDS
from services.identity_api.models import RequestLog
from services.identity_api.settings import IdentitySettings


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        settings_factory=IdentitySettings,
        app_factory="services.identity_api.app:create_app",
        migrations_dir=MIGRATIONS_DIR,
        request_log_model=RequestLog,
        commands=COMMANDS,
        argv=argv,
    )


if __name__ == "__main__":
    main_for(main)
