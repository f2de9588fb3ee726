"""Users count their own inserts; users remember the import that created them.

A row trigger on ``users`` made every bulk insert pay a per-row upsert and, on SQLite, a
statement journal: importing 100,000 users took several times longer. Inserts are now
counted by their writer (one upsert per client and status, see ``models.count_new_users``);
status changes and deletions keep their triggers. The index on ``invitations.email`` goes:
the only lookup by email compares ``lower(email)``, which it cannot serve, and every
invitation paid for it. ``users.import_run_id`` ties each user an
import created to that import's run and audit event, instead of one audit row per user.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The count triggers of revision 0001: a table rebuild on SQLite drops them with the table.
SQLITE_TRIGGERS = {
    "users_count_insert": """
    CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
      INSERT INTO client_user_counts (client_id, status, users) VALUES (NEW.client_id, NEW.status, 1)
      ON CONFLICT (client_id, status) DO UPDATE SET users = users + 1;
    END
    """,
    "users_count_delete": """
    CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
      UPDATE client_user_counts SET users = users - 1
      WHERE client_id = OLD.client_id AND status = OLD.status;
    END
    """,
    "users_count_update": """
    CREATE TRIGGER users_count_update AFTER UPDATE OF status, client_id ON users
    WHEN OLD.status IS NOT NEW.status OR OLD.client_id IS NOT NEW.client_id BEGIN
      UPDATE client_user_counts SET users = users - 1
      WHERE client_id = OLD.client_id AND status = OLD.status;
      INSERT INTO client_user_counts (client_id, status, users) VALUES (NEW.client_id, NEW.status, 1)
      ON CONFLICT (client_id, status) DO UPDATE SET users = users + 1;
    END
    """,
}


def upgrade() -> None:
    op.drop_index("ix_invitations_email", table_name="invitations")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS users_count_insert")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_count_insert_delete ON users")
        op.execute(
            "CREATE TRIGGER users_count_delete AFTER DELETE ON users "
            "FOR EACH ROW EXECUTE FUNCTION selfcare_count_users()"
        )
    # A plain ADD COLUMN: a batch (copy) migration on SQLite would drop the remaining triggers
    # of ``users`` with the old table (Alembic has no inline-constraint ADD COLUMN there).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE users ADD COLUMN import_run_id INTEGER "
            "CONSTRAINT fk_users_import_run_id_import_runs REFERENCES import_runs (id)"
        )
    else:
        op.add_column("users", sa.Column("import_run_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_users_import_run_id_import_runs", "users", "import_runs", ["import_run_id"], ["id"]
        )


def downgrade() -> None:
    op.create_index("ix_invitations_email", "invitations", ["email"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column holding a foreign key: the table is rebuilt, which drops
        # its triggers, so all three count triggers of revision 0001 are created again.
        with op.batch_alter_table("users", schema=None) as batch_op:
            batch_op.drop_column("import_run_id")  # its inline foreign key goes with it
        for name, statement in SQLITE_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(statement)
    else:
        op.drop_constraint("fk_users_import_run_id_import_runs", "users", type_="foreignkey")
        op.drop_column("users", "import_run_id")
        op.execute("DROP TRIGGER IF EXISTS users_count_delete ON users")
        op.execute(
            "CREATE TRIGGER users_count_insert_delete AFTER INSERT OR DELETE ON users "
            "FOR EACH ROW EXECUTE FUNCTION selfcare_count_users()"
        )
