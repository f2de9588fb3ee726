"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 23:53:48.514013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Per-client user counts by status, kept by the database itself so that every writer (services,
# bulk imports, hand-written SQL) keeps them right and the client list never counts users.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
      INSERT INTO client_user_counts (client_id, status, users) VALUES (NEW.client_id, NEW.status, 1)
      ON CONFLICT (client_id, status) DO UPDATE SET users = users + 1;
    END
    """,
    """
    CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
      UPDATE client_user_counts SET users = users - 1
      WHERE client_id = OLD.client_id AND status = OLD.status;
    END
    """,
    """
    CREATE TRIGGER users_count_update AFTER UPDATE OF status, client_id ON users
    WHEN OLD.status IS NOT NEW.status OR OLD.client_id IS NOT NEW.client_id BEGIN
      UPDATE client_user_counts SET users = users - 1
      WHERE client_id = OLD.client_id AND status = OLD.status;
      INSERT INTO client_user_counts (client_id, status, users) VALUES (NEW.client_id, NEW.status, 1)
      ON CONFLICT (client_id, status) DO UPDATE SET users = users + 1;
    END
    """,
]

POSTGRES_TRIGGERS = [
    """
    CREATE FUNCTION selfcare_count_users() RETURNS trigger AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE client_user_counts SET users = users - 1
        WHERE client_id = OLD.client_id AND status = OLD.status;
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO client_user_counts (client_id, status, users)
        VALUES (NEW.client_id, NEW.status, 1)
        ON CONFLICT (client_id, status) DO UPDATE SET users = client_user_counts.users + 1;
      END IF;
      RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER users_count_insert_delete AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION selfcare_count_users()
    """,
    """
    CREATE TRIGGER users_count_update AFTER UPDATE OF status, client_id ON users
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.client_id IS DISTINCT FROM NEW.client_id)
    EXECUTE FUNCTION selfcare_count_users()
    """,
]


def _create_count_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def _drop_count_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("users_count_insert", "users_count_delete", "users_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_count_insert_delete ON users")
        op.execute("DROP TRIGGER IF EXISTS users_count_update ON users")
        op.execute("DROP FUNCTION IF EXISTS selfcare_count_users()")


def upgrade() -> None:

    op.create_table(
        "assets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("mime", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint("sha256", name=op.f("uq_assets_sha256")),
    )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=True),
        sa.Column("actor_label", sa.String(length=254), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("report_path", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_path", sa.String(length=1000), nullable=True),
        sa.Column("failed_cell", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=200), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_job_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_job_runs_job_started", ["job_name", "started_at"], unique=False)

    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_folded", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("login_domain", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("postcode", sa.String(length=16), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'operator') = (parent_id IS NULL)",
            name=op.f("ck_organisations_operator_is_root"),
        ),
        sa.CheckConstraint(
            "kind IN ('operator', 'partner', 'client')", name=op.f("ck_organisations_kind")
        ),
        sa.CheckConstraint(
            "language IS NULL OR language IN ('fr', 'en')", name=op.f("ck_organisations_language")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["organisations.id"],
            name=op.f("fk_organisations_parent_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("ref", name=op.f("uq_organisations_ref")),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_organisations_kind_name_folded", ["kind", "name_folded", "id"], unique=False
        )
        batch_op.create_index("ix_organisations_parent_id", ["parent_id"], unique=False)
        batch_op.create_index("ix_organisations_path", ["path"], unique=False)

    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed')",
            name=op.f("ck_outbound_messages_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("message_key", name=op.f("uq_outbound_messages_message_key")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbound_messages_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_api_keys_client_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_client_id"), ["client_id"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_label", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("target_label", sa.String(length=300), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_audit_events_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index("ix_audit_events_organisation_id", ["organisation_id"], unique=False)
        batch_op.create_index("ix_audit_events_target", ["target_type", "target_id"], unique=False)

    op.create_table(
        "branding_settings",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("logo_asset_id", sa.Integer(), nullable=True),
        sa.Column("primary_color", sa.String(length=7), nullable=True),
        sa.Column("gradient_color", sa.String(length=7), nullable=True),
        sa.Column("text_color", sa.String(length=7), nullable=True),
        sa.Column("banner_asset_id", sa.Integer(), nullable=True),
        sa.Column("banner_link", sa.String(length=2000), nullable=True),
        sa.Column("banner_message", sa.String(length=150), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["banner_asset_id"],
            ["assets.id"],
            name=op.f("fk_branding_settings_banner_asset_id_assets"),
        ),
        sa.ForeignKeyConstraint(
            ["logo_asset_id"], ["assets.id"], name=op.f("fk_branding_settings_logo_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_branding_settings_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_branding_settings")),
    )
    op.create_table(
        "client_user_counts",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('not_invited', 'invited', 'active', 'deactivated')",
            name=op.f("ck_client_user_counts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["organisations.id"],
            name=op.f("fk_client_user_counts_client_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "status", name=op.f("pk_client_user_counts")),
    )
    op.create_table(
        "job_locks",
        sa.Column("job_name", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["job_runs.id"], name=op.f("fk_job_locks_run_id_job_runs")
        ),
        sa.PrimaryKeyConstraint("job_name", name=op.f("pk_job_locks")),
    )
    op.create_table(
        "module_settings",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "module IN ('mes_telephones', 'documentations', 'gestion_des_appels', 'journaux_d_appels', 'messagerie_vocale', 'contacts', 'com_unifiees', 'offres_mobiles')",
            name=op.f("ck_module_settings_module"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_module_settings_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", "module", name=op.f("pk_module_settings")),
    )
    op.create_table(
        "sub_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_folded", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["organisations.id"],
            name=op.f("fk_sub_accounts_client_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sub_accounts")),
        sa.UniqueConstraint(
            "client_id", "name_folded", name=op.f("uq_sub_accounts_client_id_name_folded")
        ),
    )
    with op.batch_alter_table("sub_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sub_accounts_client_id"), ["client_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("sub_account_id", sa.Integer(), nullable=True),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("civility", sa.String(length=8), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("sort_name", sa.String(length=210), nullable=False),
        sa.Column("search_text", sa.String(length=700), nullable=False),
        sa.Column("function", sa.String(length=150), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_folded", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("services", sa.String(length=500), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("right_manage_rights", sa.Boolean(), nullable=False),
        sa.Column("right_place_orders", sa.Boolean(), nullable=False),
        sa.Column("right_view_invoices", sa.Boolean(), nullable=False),
        sa.Column("notification_prefs", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "civility IS NULL OR civility IN ('M.', 'Mme')", name=op.f("ck_users_civility")
        ),
        sa.CheckConstraint(
            "language IS NULL OR language IN ('fr', 'en')", name=op.f("ck_users_language")
        ),
        sa.CheckConstraint(
            "role <> 'administrator' OR sub_account_id IS NULL",
            name=op.f("ck_users_administrator_all_subaccounts"),
        ),
        sa.CheckConstraint(
            "role IN ('administrator', 'manager', 'user')", name=op.f("ck_users_role")
        ),
        sa.CheckConstraint(
            "status <> 'active' OR activated_at IS NOT NULL", name=op.f("ck_users_active_has_date")
        ),
        sa.CheckConstraint(
            "status <> 'deactivated' OR deactivated_at IS NOT NULL",
            name=op.f("ck_users_deactivated_has_date"),
        ),
        sa.CheckConstraint(
            "status <> 'invited' OR invited_at IS NOT NULL", name=op.f("ck_users_invited_has_date")
        ),
        sa.CheckConstraint(
            "status IN ('not_invited', 'invited', 'active', 'deactivated')",
            name=op.f("ck_users_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_users_client_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["sub_account_id"],
            ["sub_accounts.id"],
            name=op.f("fk_users_sub_account_id_sub_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("login", name=op.f("uq_users_login")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_client_sort", ["client_id", "sort_name", "id"], unique=False
        )
        batch_op.create_index(
            "ix_users_client_status_sort", ["client_id", "status", "sort_name", "id"], unique=False
        )
        batch_op.create_index("ix_users_email_folded", ["email_folded"], unique=False)
        batch_op.create_index("ix_users_sub_account_id", ["sub_account_id"], unique=False)

    op.create_table(
        "administrators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('administrator', 'system')", name=op.f("ck_administrators_kind")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_administrators_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_administrators_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administrators")),
        sa.UniqueConstraint("email", name=op.f("uq_administrators_email")),
    )
    with op.batch_alter_table("administrators", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_administrators_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "supervision_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor_label", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_supervision_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_supervision_sessions_token_hash")),
    )
    with op.batch_alter_table("supervision_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_supervision_sessions_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_restrictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=120), nullable=False),
        sa.CheckConstraint(
            "kind IN ('contract', 'billing_account', 'application')",
            name=op.f("ck_user_restrictions_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_restrictions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_restrictions")),
        sa.UniqueConstraint(
            "user_id", "kind", "value", name=op.f("uq_user_restrictions_user_id_kind_value")
        ),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("administrator_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.CheckConstraint("kind IN ('user', 'admin')", name=op.f("ck_invitations_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'revoked', 'expired', 'superseded')",
            name=op.f("ck_invitations_status"),
        ),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR administrator_id IS NOT NULL",
            name=op.f("ck_invitations_has_target"),
        ),
        sa.ForeignKeyConstraint(
            ["administrator_id"],
            ["administrators.id"],
            name=op.f("fk_invitations_administrator_id_administrators"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbound_messages.id"],
            name=op.f("fk_invitations_message_id_outbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_invitations_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_email", ["email"], unique=False)
        batch_op.create_index(
            "ix_invitations_status_expires", ["status", "expires_at"], unique=False
        )
        batch_op.create_index("ix_invitations_user_status", ["user_id", "status"], unique=False)
    _create_count_triggers()


def downgrade() -> None:
    _drop_count_triggers()

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_user_status")
        batch_op.drop_index("ix_invitations_status_expires")
        batch_op.drop_index("ix_invitations_email")

    op.drop_table("invitations")
    op.drop_table("user_restrictions")
    with op.batch_alter_table("supervision_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_sessions_user_id"))

    op.drop_table("supervision_sessions")
    with op.batch_alter_table("administrators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_administrators_organisation_id"))

    op.drop_table("administrators")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_sub_account_id")
        batch_op.drop_index("ix_users_email_folded")
        batch_op.drop_index("ix_users_client_status_sort")
        batch_op.drop_index("ix_users_client_sort")

    op.drop_table("users")
    with op.batch_alter_table("sub_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sub_accounts_client_id"))

    op.drop_table("sub_accounts")
    op.drop_table("module_settings")
    op.drop_table("job_locks")
    op.drop_table("client_user_counts")
    op.drop_table("branding_settings")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_target")
        batch_op.drop_index("ix_audit_events_organisation_id")
        batch_op.drop_index("ix_audit_events_occurred_at")

    op.drop_table("audit_events")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_client_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_messages_status_next")

    op.drop_table("outbound_messages")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index("ix_organisations_path")
        batch_op.drop_index("ix_organisations_parent_id")
        batch_op.drop_index("ix_organisations_kind_name_folded")

    op.drop_table("organisations")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_job_started")

    op.drop_table("job_runs")
    op.drop_table("import_runs")
    op.drop_table("assets")
