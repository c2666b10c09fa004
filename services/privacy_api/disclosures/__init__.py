"""Requests by authorities for personal data, checked, decided and answered with a scoped
export (privacy statement: "Soms geven we uw gegevens aan autoriteiten")."""
