"""The pages the Selfcare shows (the invitee's forms, the client's home as its users see it, the
branding preview): Jinja templates rendered in the reader's language. No HTTP here: the web
shell serves them, the branding preview embeds them."""
