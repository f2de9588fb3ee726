"""Truthful states: invitations sent or bounced, messages cancelled, drafts, who ran a job.

An invitation was ``pending`` from the moment its mail was queued until it was accepted, so a
mail refused with a 550 still read "invited". It now becomes ``sent`` (with ``sent_at``) when
the mail server accepts the mail, or ``bounced`` (with the server's reason in
``status_reason``). A queued message whose link was revoked or superseded becomes
``cancelled`` (``cancel_reason``) and is never sent. ``users.draft`` keeps users created
"without activating" (seed 003) out of bulk invitations. ``job_runs.actor_label`` records who
started each run. Two indexes serve the deliverer (invitation by message) and the invitation
ledger (by organisation).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_INVITATION_STATUSES = ("pending", "accepted", "revoked", "expired", "superseded")
NEW_INVITATION_STATUSES = (
    "pending",
    "sent",
    "bounced",
    "accepted",
    "revoked",
    "expired",
    "superseded",
)
OLD_MESSAGE_STATUSES = ("queued", "sending", "sent", "failed")
NEW_MESSAGE_STATUSES = (*OLD_MESSAGE_STATUSES, "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _replace_status_check(table: str, statuses: tuple[str, ...]) -> None:
    name = op.f(f"ck_{table}_status")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a constraint: the table is copied (no trigger lives on these).
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.drop_constraint(name, type_="check")
            batch_op.create_check_constraint(name, _in("status", statuses))
    else:
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, _in("status", statuses))


def upgrade() -> None:
    # A plain ADD COLUMN on users: a batch copy on SQLite would drop its count triggers.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE users ADD COLUMN draft BOOLEAN DEFAULT 0 NOT NULL")
    else:
        op.add_column(
            "users", sa.Column("draft", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
    _replace_status_check("invitations", NEW_INVITATION_STATUSES)
    op.create_index("ix_invitations_message_id", "invitations", ["message_id"])
    op.create_index("ix_invitations_organisation_id", "invitations", ["organisation_id", "id"])
    with op.batch_alter_table("outbound_messages") as batch_op:
        batch_op.add_column(sa.Column("cancel_reason", sa.String(length=30), nullable=True))
    _replace_status_check("outbound_messages", NEW_MESSAGE_STATUSES)
    with op.batch_alter_table("job_runs") as batch_op:
        batch_op.add_column(sa.Column("actor_label", sa.String(length=254), nullable=True))
    # Invitations whose mail already left were still called pending: say sent.
    op.execute(
        "UPDATE invitations SET status = 'sent', sent_at = ("
        "SELECT sent_at FROM outbound_messages m WHERE m.id = invitations.message_id) "
        "WHERE status = 'pending' AND message_id IN "
        "(SELECT id FROM outbound_messages WHERE status = 'sent')"
    )
    op.execute(
        "UPDATE invitations SET status = 'bounced', closed_at = CURRENT_TIMESTAMP, "
        "status_reason = (SELECT last_error FROM outbound_messages m "
        "WHERE m.id = invitations.message_id) "
        "WHERE status = 'pending' AND message_id IN "
        "(SELECT id FROM outbound_messages WHERE status = 'failed')"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE outbound_messages SET status = 'failed', "
        "last_error = 'cancelled: ' || COALESCE(cancel_reason, '') WHERE status = 'cancelled'"
    )
    op.execute("UPDATE invitations SET status = 'pending' WHERE status = 'sent'")
    op.execute("UPDATE invitations SET status = 'revoked' WHERE status = 'bounced'")
    with op.batch_alter_table("job_runs") as batch_op:
        batch_op.drop_column("actor_label")
    _replace_status_check("outbound_messages", OLD_MESSAGE_STATUSES)
    with op.batch_alter_table("outbound_messages") as batch_op:
        batch_op.drop_column("cancel_reason")
    op.drop_index("ix_invitations_organisation_id", table_name="invitations")
    op.drop_index("ix_invitations_message_id", table_name="invitations")
    _replace_status_check("invitations", OLD_INVITATION_STATUSES)
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_column("status_reason")
        batch_op.drop_column("sent_at")
    if op.get_bind().dialect.name == "sqlite":
        # DROP COLUMN (SQLite 3.35+) keeps the table and its count triggers.
        op.execute("ALTER TABLE users DROP COLUMN draft")
    else:
        op.drop_column("users", "draft")
