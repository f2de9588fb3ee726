"""The invitee's portal: failed form submissions per token, new-link requests, supervision opened.

``invitation_attempts`` counts failed POSTs of an invitation form so that the limit (10 per
token per 15 minutes) holds across server processes; ``link_requests`` records the invitees'
"send me a new link" (once per user per 24 hours) and what came of it; ``opened_at`` on
``supervision_sessions`` lets the portal audit the opening of a supervision link once.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitation_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_invitation_attempts_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation_attempts")),
    )
    op.create_index(
        "ix_invitation_attempts_invitation_at",
        "invitation_attempts",
        ["invitation_id", "failed_at"],
    )
    op.create_table(
        "link_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("new_invitation_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('queued', 'refused')", name=op.f("ck_link_requests_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_link_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_link_requests_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["new_invitation_id"],
            ["invitations.id"],
            name=op.f("fk_link_requests_new_invitation_id_invitations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_requests")),
    )
    op.create_index("ix_link_requests_user_requested", "link_requests", ["user_id", "requested_at"])
    with op.batch_alter_table("supervision_sessions") as batch_op:
        batch_op.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("supervision_sessions") as batch_op:
        batch_op.drop_column("opened_at")
    op.drop_index("ix_link_requests_user_requested", table_name="link_requests")
    op.drop_table("link_requests")
    op.drop_index("ix_invitation_attempts_invitation_at", table_name="invitation_attempts")
    op.drop_table("invitation_attempts")
