"""The invitee's and supervisor's side of the Selfcare: ``selfcare-ops serve`` (Starlette).

- :mod:`.app`: ``create_app(settings)``, routes, error pages;
- :mod:`.invitation`: ``/invitation/<token>``, the form of seed 004 and the closed-link pages;
- :mod:`.selfcare`: the client's Selfcare home (user, supervision, preview);
- :mod:`.assets`: images by content hash and colour sheets;
- :mod:`.security`: headers and the redacted access log;
- :mod:`.render`, :mod:`.home`: templates, shared with ``branding preview --out x.html``.
"""
