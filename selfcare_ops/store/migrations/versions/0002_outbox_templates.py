"""outbox templates: a mail template stored once, each message keeps its slot values

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import html
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Rows per statement when the downgrade writes the templated messages out in full.
BATCH = 1000
#: Slot delimiter of the stored templates at this revision (``\x1e<name>\x1e``).
MARK = "\x1e"


def upgrade() -> None:
    op.create_table(
        "mail_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_templates")),
        sa.UniqueConstraint("sha256", name=op.f("uq_mail_templates_sha256")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("person", sa.JSON(), nullable=True))
        batch_op.alter_column("subject", existing_type=sa.String(length=300), nullable=True)
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_outbound_messages_template_id_mail_templates"),
            "mail_templates",
            ["template_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            op.f("ck_outbound_messages_has_content"),
            "template_id IS NOT NULL OR (subject IS NOT NULL AND body_text IS NOT NULL)",
        )


def _fill(template: str | None, values: dict[str, Any], escape: bool) -> str | None:
    # The filling of this revision's templates, kept here: a migration must not change meaning
    # when the toolkit's renderer evolves.
    if template is None or MARK not in template:
        return template
    parts = template.split(MARK)
    for index in range(1, len(parts), 2):
        value = str(values.get(parts[index]) or "")
        parts[index] = html.escape(value, quote=True) if escape else value
    return "".join(parts)


def _write_out_templated_messages() -> None:
    """Give every templated message its full subject and bodies, as revision 0001 keeps them."""
    bind = op.get_bind()
    messages = sa.table(
        "outbound_messages",
        sa.column("id", sa.Integer()),
        sa.column("template_id", sa.Integer()),
        sa.column("person", sa.JSON()),
        sa.column("subject", sa.String()),
        sa.column("body_text", sa.Text()),
        sa.column("body_html", sa.Text()),
    )
    templates = sa.table(
        "mail_templates",
        sa.column("id", sa.Integer()),
        sa.column("subject", sa.String()),
        sa.column("body_text", sa.Text()),
        sa.column("body_html", sa.Text()),
    )
    stored = {row.id: row for row in bind.execute(sa.select(templates))}
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(messages.c.id, messages.c.template_id, messages.c.person)
            .where(messages.c.template_id.is_not(None), messages.c.id > last_id)
            .order_by(messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row in rows:
            template = stored[row.template_id]
            person = row.person if isinstance(row.person, dict) else json.loads(row.person or "{}")
            changes.append(
                {
                    "mid": row.id,
                    "subject": _fill(template.subject, person, escape=False),
                    "body_text": _fill(template.body_text, person, escape=False),
                    "body_html": _fill(template.body_html, person, escape=True),
                }
            )
        bind.execute(
            messages.update()
            .where(messages.c.id == sa.bindparam("mid"))
            .values(
                subject=sa.bindparam("subject"),
                body_text=sa.bindparam("body_text"),
                body_html=sa.bindparam("body_html"),
            ),
            changes,
        )
        last_id = rows[-1].id


def downgrade() -> None:
    _write_out_templated_messages()
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_messages_has_content"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_outbound_messages_template_id_mail_templates"), type_="foreignkey"
        )
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("subject", existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_column("person")
        batch_op.drop_column("template_id")
    op.drop_table("mail_templates")
