"""What a person reads in the job notebooks, in the current language.

An analyst opens an executed job notebook (or its HTML page): its headings, the few lines under
them and what its cells print come from here, through the catalogs, instead of markdown cells
that can speak one language only. A notebook shows a section with a code cell whose input is
hidden (tag ``remove-input``): ``Markdown(section("onboarding", "plan"))``. Its first cell, in
markdown, is for developers (collapsed, tag ``remove-cell``: the HTML page leaves it out).

The kernel speaks the language of whoever ran the job (the runner passes it on).
"""

from __future__ import annotations

from pathlib import Path

from selfcare_ops.i18n import N_, _, ngettext

#: Job -> section -> (heading, text under it; empty: the heading alone). "title" is the page's.
SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "adoption_report": {
        "title": (
            N_("Adoption report"),
            N_(
                "How far the Selfcare accounts of every partner, client and sub-account have "
                "come along the invitation funnel (not invited, invited, active), how long "
                "people take to accept an invitation, how many accounts are activated each "
                "week, and which invitation mails bounced or were refused. The report covers "
                "what the person who ran the job may see."
            ),
        ),
        "computing": (
            N_("Computing the report"),
            N_("Nothing is changed: the report is read once; the totals sum it up."),
        ),
        "funnel_partners": (
            N_("Funnel by partner"),
            N_(
                "Each partner counts every client of its subtree (the clients of a nested "
                "partner count for its parents too). An account that went further also counts "
                "for the stages before (a deactivated account was active once)."
            ),
        ),
        "funnel_clients": (N_("Funnel by client (the 20 largest)"), ""),
        "funnel_sub_accounts": (
            N_("Funnel by sub-account (the 20 largest)"),
            N_(
                "The users of a client who belong to no sub-account (administrators, for "
                "instance) are counted on a line of their own."
            ),
        ),
        "time_to_accept": (
            N_("Time to accept"),
            N_(
                "Days from the invitation to the activation of the account, per direct "
                "partner: from the accepted invitation when there is one, otherwise from the "
                "account's invitation and activation dates."
            ),
        ),
        "slowest_clients": (
            N_("The slowest clients"),
            N_(
                "The 20 clients where accepting takes longest (median in days; clients with "
                "at least 5 acceptances)."
            ),
        ),
        "activations": (
            N_("Activations over time"),
            N_(
                "Invitations sent and accounts activated per week (weeks start on Monday), "
                "the last twelve weeks."
            ),
        ),
        "failed_mails": (
            N_("Bounced and failed mails"),
            N_(
                "Messages the outbox gave up on, with the client the invitation was for and "
                "the last error the mail server gave."
            ),
        ),
        "exports": (
            N_("Exports"),
            N_(
                "Every table as a CSV file that Excel opens as is (semicolons, UTF-8 with BOM; "
                "a cell a spreadsheet would run as a formula is neutralised), and the charts "
                "as PNG images."
            ),
        ),
    },
    "branding_audit": {
        "title": (
            N_("Branding audit"),
            N_(
                "Which clients and partners look unreadable in the Selfcare: text too close to "
                "the colour of the menus and buttons (WCAG contrast below 4.5:1), a gradient "
                "that breaks readability, a missing logo or banner image. The audit is "
                "exported as a CSV file, and a preview of the portal is drawn for the worst "
                "cases (most problems first, then the lowest contrast): what their users see, "
                "at a glance."
            ),
        ),
        "audit": (
            N_("The audit"),
            N_(
                "One row per organisation with a problem: its effective colours, where each "
                "comes from, the problems and a suggested text colour."
            ),
        ),
        "worst": (N_("The worst cases"), ""),
        "previews": (N_("What their users see"), ""),
    },
    "invitation_maintenance": {
        "title": (
            N_("Invitation maintenance"),
            N_(
                "The nightly housekeeping of invitations: overdue invitations expire, the "
                "users who have not accepted get a new link, the outbox is delivered, then the "
                "invitations that need a person are listed. Every change is audited in the "
                "name of whoever ran the job."
            ),
        ),
        "expire": (
            N_("1. Expire overdue invitations"),
            N_(
                "Every pending invitation past its expiry date: the link stops working, the "
                "user stays invited."
            ),
        ),
        "remind": (
            N_("2. Remind the users who have not accepted"),
            N_(
                "The users invited longer ago than the job's setting get a new link and the "
                "old one stops working; running the job twice the same day reminds nobody "
                "twice."
            ),
        ),
        "deliver": (
            N_("3. Deliver the outbox"),
            N_(
                "Through the configured transport, trying again after a temporary failure. "
                "When the transport is unavailable the run fails and the messages wait for "
                "the next run."
            ),
        ),
        "outbox": (
            N_("Outbox after the run"),
            N_(
                "Messages by status; the summary of this run is also written to "
                "maintenance.json in the output folder."
            ),
        ),
        "attention": (
            N_("Invitations that need a person"),
            N_(
                "Invited users whose latest invitation bounced (the mail server refused the "
                "address: a reminder would bounce again) or expired, with what to do about "
                "each; also saved as attention.csv in the output folder."
            ),
        ),
    },
    "onboarding": {
        "title": (
            N_("CSV onboarding"),
            N_(
                "The users of a CSV file a customer sent (often a French Excel export). First "
                "the plan: every line read, checked and matched against the database (created, "
                "updated, unchanged or rejected, with the reason) without writing anything. "
                "Then the import, unless it is a dry run: the valid lines are applied (a "
                "rejected line never blocks the others) and the run is recorded. Importing "
                "the same file again changes nothing."
            ),
        ),
        "plan": (
            N_("The plan"),
            N_(
                "What the import will do, line by line; nothing is written yet. Warnings are "
                "about the whole file (lines in another encoding, for instance); notes about "
                "one line (an encoding to check, a voided invitation link, a sub-account to "
                "create)."
            ),
        ),
        "import": (
            N_("The import"),
            N_(
                "In a dry run the same report is produced and nothing is written. The report "
                "(every line with its outcome) is written as a CSV file to the output folder."
            ),
        ),
        "rejected": (
            N_("Rejected lines"),
            N_(
                "Each with its line number in the file and the reason, to send back to the "
                "customer."
            ),
        ),
        "check": (
            N_("Lines to check"),
            N_(
                "Lines imported with a note: read in another encoding than the rest of the "
                "file (check the accents), an invitation link voided because the email "
                "changed, a sub-account created."
            ),
        ),
    },
    "ping": {
        "title": (
            N_("Ping"),
            N_(
                "A check that jobs can run: this environment's kernel started, imported "
                "selfcare_ops and reached the configured database at the current schema "
                "revision."
            ),
        ),
    },
}


def section(job: str, key: str) -> str:
    """Section ``key`` of ``job``'s notebook as markdown: its heading (the page's title for
    ``title``) and the text under it."""
    heading, text = SECTIONS[job][key]
    level = "#" if key == "title" else "##"
    shown = f"{level} {_(heading)}"
    return f"{shown}\n\n{_(text)}" if text else shown


def expired_line(count: int) -> str:
    return ngettext("{count} invitation expired.", "{count} invitations expired.", count).format(
        count=count
    )


def reminded_line(count: int) -> str:
    return ngettext(
        "{count} user reminded with a new link.", "{count} users reminded with a new link.", count
    ).format(count=count)


def attention_line(total: int, bounced: int) -> str:
    """How many invitations need a person, and why (the others expired)."""
    return ngettext(
        "{count} invitation needs a person: {bounced} bounced, {expired} expired.",
        "{count} invitations need a person: {bounced} bounced, {expired} expired.",
        total,
    ).format(count=total, bounced=bounced, expired=total - bounced)


def warning_line(warning: str) -> str:
    return _("Warning: {warning}").format(warning=warning)


def report_line(path: Path | str) -> str:
    return _("Report: {path}").format(path=path)


def chart_alt(name: str) -> str:
    """The text a screen reader says for an adoption chart."""
    return _("Adoption chart: {name}").format(name=name)


def preview_alt(ref: str) -> str:
    """The text a screen reader says for a branding preview."""
    return _("Branding preview of {ref}").format(ref=ref)
