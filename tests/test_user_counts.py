"""Per-client user counts are kept one way: whatever path inserts or changes users, the counts
the client list reads are right, with nothing for the writer to remember (``ClientUserCount``).
"""

from __future__ import annotations

from pathlib import Path

from row_support import raw_user_row
from sqlalchemy import select, text

from selfcare_ops.accounts.lifecycle import deactivate
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.demo import load_demo
from selfcare_ops.invitations.service import invite_user
from selfcare_ops.onboarding import import_users
from selfcare_ops.store.bulk_sql import insert_rows
from selfcare_ops.store.models import ClientUserCount, Organisation, User, recount_users, utcnow

CSV = "\r\n".join(
    [
        "Nom;Prénom;Adresse e-mail",
        "Lenoir;Paule;paule.lenoir@cb.example",
        "Leblanc;Jules;jules.leblanc@cb.example",
        "Sansmail;Rita;",
        "",
    ]
).encode("cp1252")


def _demo_dir(folder: Path) -> Path:
    """A demo data set of one client with users in three states (the loader's own format)."""
    files = {
        "organisations.csv": "ref,kind,parent_ref,name,login_domain,language\n"
        "OP,operator,,Opérateur Télécom,op.fr,fr\n"
        "P9,partner,OP,Partenaire Démo,,\n"
        "C9,client,P9,Client Démo,demo.example,\n",
        "sub_accounts.csv": "client_ref,name\nC9,Siège\n",
        "administrators.csv": "email,display_name,org_ref\n",
        "users.csv": "client_ref,login,civility,first_name,last_name,function,language,email,"
        "phone,mobile,services,sub_account,role,right_manage_rights,right_place_orders,"
        "right_view_invoices,status,created_at,invited_at,activated_at,deactivated_at\n"
        "C9,aun@demo.example,,Anne,Un,,,anne@demo.example,,,,,administrator,1,1,1,active,"
        "2026-01-01T08:00:00+00:00,2026-01-02T08:00:00+00:00,2026-01-03T08:00:00+00:00,\n"
        "C9,bdeux@demo.example,,Bea,Deux,,,bea@demo.example,,,,Siège,user,0,0,0,invited,"
        "2026-01-01T08:00:00+00:00,2026-01-02T08:00:00+00:00,,\n"
        "C9,ctrois@demo.example,,Carl,Trois,,,,,,,,user,0,0,0,not_invited,"
        "2026-01-01T08:00:00+00:00,,,\n",
    }
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def _stored_counts(session, ref: str) -> dict[str, int]:
    return dict(
        session.execute(
            select(ClientUserCount.status, ClientUserCount.users)
            .join(Organisation, Organisation.id == ClientUserCount.client_id)
            .where(Organisation.ref == ref, ClientUserCount.users > 0)
        ).all()
    )


def test_every_path_that_writes_users_keeps_the_counts(session_factory, tree, tmp_path) -> None:
    """The ORM, a CSV import, the demo loader and the bulk insert itself, then status changes:
    ``db recount`` finds nothing to correct."""
    with session_factory() as session:
        before = _stored_counts(session, "CB")
    with session_factory.begin() as session:  # the ORM (one user)
        new = NewUser("Zoé", "Martin", email="zoe@cb.example")
        zoe = create_user(session, tree.system, "CB", new).login
    report = import_users(session_factory, tree.system, CSV, client_ref="CB", invite=True)
    assert report.counts["create"] == 3
    with session_factory.begin() as session:
        load_demo(session, _demo_dir(tmp_path))
    with session_factory.begin() as session:  # the one bulk insert, as any new writer would
        client_id = session.scalar(select(Organisation.id).where(Organisation.ref == "CB"))
        now = utcnow()
        insert_rows(
            session,
            User.__table__,
            [
                raw_user_row(client_id, login, "Bulk", login, now)
                for login in ("bulk1@cb", "bulk2@cb")
            ],
        )
    with session_factory.begin() as session:  # status changes: the triggers
        invite_user(session, tree.system, zoe)
    with session_factory() as session:
        after = _stored_counts(session, "CB")  # Rita and the two bulk users; Zoé, Paule, Jules
        assert after["not_invited"] == before.get("not_invited", 0) + 3
        assert after["invited"] == before.get("invited", 0) + 3
        assert _stored_counts(session, "C9") == {"active": 1, "invited": 1, "not_invited": 1}
    with session_factory.begin() as session:
        assert recount_users(session.connection()) == {}


def test_recount_corrects_what_hand_written_sql_inserted(session_factory, tree) -> None:
    """The check above can fail: a user inserted around every writer is not counted until
    ``db recount``, which names the wrong count and fixes it."""
    with session_factory.begin() as session:
        client_id = session.scalar(select(Organisation.id).where(Organisation.ref == "CB"))
        before = _stored_counts(session, "CB").get("not_invited", 0)
        session.execute(
            text(
                "INSERT INTO users (client_id, login, first_name, last_name, sort_name, "
                "search_text, role, right_manage_rights, right_place_orders, "
                "right_view_invoices, status, status_changed_at, created_at, updated_at) "
                "VALUES (:c, 'raw@cb', 'Raw', 'Sql', 'sql raw', 'raw sql', 'user', "
                ":f, :f, :f, 'not_invited', :t, :t, :t)"
            ),
            {"c": client_id, "f": False, "t": utcnow()},
        )
    with session_factory.begin() as session:
        assert recount_users(session.connection()) == {(client_id, "not_invited"): before}
        assert _stored_counts(session, "CB")["not_invited"] == before + 1
    with session_factory.begin() as session:
        assert recount_users(session.connection()) == {}


def test_deactivating_moves_a_user_between_counts(session_factory, tree) -> None:
    with session_factory() as session:
        before = _stored_counts(session, "CA")
        login, status = session.execute(
            select(User.login, User.status).where(
                User.login.in_(tree.client_a_users),
                User.role == "user",
                User.status != "deactivated",
            )
        ).first()
    with session_factory.begin() as session:
        deactivate(session, tree.system, login)
    with session_factory() as session:
        after = _stored_counts(session, "CA")
    assert after.get(status, 0) == before[status] - 1
    assert after["deactivated"] == before.get("deactivated", 0) + 1
