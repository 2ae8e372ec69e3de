"""Outreach: render a template per recipient, queue it in the outbox, re-check, deliver at most once.

Flow and safety rules:
1. `preview` renders each customer's message (Jinja2 sandbox, StrictUndefined) without writing.
2. `queue_messages` writes one `messages` row per recipient, keyed by an idempotency key derived
   from the action (a key the page makes once per form) and the customer: queueing the same action
   twice queues nothing new. The statement attachment and the RFC 5322 Message-ID are made at this
   point and stored, so every attempt and a resend carry the same Message-ID.
3. `deliver` takes each queued message and, right before sending, re-checks it:
   - blocked when every invoice in it is paid or disputed by now (named in the reason);
   - blocked when the account is with a collection agency or written off;
   - blocked by the frequency cap (`frequency_cap_count`): at most `max_emails_per_customer`
     emails per customer in the last `frequency_window_days` days, whoever sent them (every team's
     email activities), plus this customer's messages that may have gone out in the window without
     an activity yet: uncertain ones handed over inside it, and ones being handed over right now
     (a live lease). A possibly-sent message counts: at most once beats twice, and so does the cap.

The delivery states, who moves them, and the rules that keep a message from going out twice
(claims, leases, the hand-over mark, recovery, `uncertain`): the `delivery` module's docstring.

Mode (`[outreach] mode`): "outbox" writes .eml files to `outbox_dir` (env ARDESK_OUTBOX), so a
fresh install never emails anyone; "smtp" delivers through `[smtp]` (env ARDESK_SMTP_USER /
ARDESK_SMTP_PASSWORD for credentials).

Modules (import each name from the module that defines it; this package re-exports nothing):
- `config`: OutreachConfig (settings and environment), OutreachError.
- `templates`: the template files and rendering (step 1).
- `recipients`: who a customer's message goes to, and its open invoices.
- `queue`: Draft, `preview`, `queue_messages`, idempotency keys and Message-IDs (steps 1, 2).
- `policy`: the re-check and the frequency cap (step 3).
- `transport`: the email itself and how it leaves (SMTP or the outbox folder).
- `delivery`: `deliver`, recovery, a person's decisions on uncertain messages, `send_now`, `retry_queued`.
- `outbox`: the outbox listing, the last contact, what the cap counts now.
"""
