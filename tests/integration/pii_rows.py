"""Generated rows holding every kind of personal data the refresh must remove, for the CMS schema.

`insert(conn, tenants)` adds, to each of the given tenants, users with real-looking e-mails and phones
in many formats, bookings whose notes quote them, payments with card holders, content revisions
mentioning e-mails, phones and Luhn-valid card numbers (with spaces and dashes), and notifications
whose jsonb payloads carry them under listed keys, in nested strings, after JSON escapes and as a
bare number. It returns every original value it wrote, for the test's own independent search.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

# Luhn-valid test card numbers of the major brands, written as people write them.
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011 0009 9013 9424",
         "4012888888881881", "3530-1113-3330-0000", "4000 0566 5566 5556", "2223 0031 2200 3222"]
PHONES = ["+44 20 7946 0018", "+1 (555) 123-4567", "07911 123456", "555-867-5309", "06 12 34 56 78",
          "+49 151 12345678", "+33612345678", "(212) 555-0199", "020 7946 0958", "+44 7911 654321"]
NAMES = ["Alice Fairweather", "Bartholomew Quince", "Chidinma Okafor", "Dmitri Volkonsky", "Eleanor Rigby"]
BASE_ID = 900_000


def emails_for(tenant: int, i: int) -> str:
    forms = [f"Alice.Fairweather+news{tenant}x{i}@gmail.com", f"BOB.QUINCE{tenant}X{i}@YAHOO.CO.UK",
             f"c_okafor-{tenant}-{i}@mail.example.org", f"dmitri{tenant}.{i}@volkonsky.ru"]
    return forms[i % len(forms)]


def insert(conn, tenants: list[int], per_tenant: int = 4) -> dict[str, Any]:
    """Insert the rows (ids from 900000 up); returns {"emails", "phones", "cards", "names", "ids": {table: [ids]}}."""
    out: dict[str, Any] = {"emails": [], "phones": [], "cards": [], "names": [], "ids": {}}

    def note(table: str, id_: int) -> None:
        out["ids"].setdefault(table, []).append(id_)

    n = 0
    for t in tenants:
        item = conn.execute("SELECT id FROM content_items WHERE tenant_id = %s ORDER BY id LIMIT 1", (t,)).fetchone()[0]
        cat = conn.execute("SELECT id FROM catalog_items WHERE tenant_id = %s ORDER BY id LIMIT 1", (t,)).fetchone()[0]
        for i in range(per_tenant):
            n += 1
            uid = BASE_ID + n
            email = emails_for(t, i)
            phone = PHONES[n % len(PHONES)]
            card = CARDS[n % len(CARDS)]
            other_card = CARDS[(n + 3) % len(CARDS)]
            name = NAMES[n % len(NAMES)] + f" {t}-{i}"
            out["emails"].append(email)
            out["phones"].append(phone)
            out["cards"] += [card, other_card]
            out["names"].append(name)
            conn.execute("INSERT INTO users (id, tenant_id, email, full_name, phone, role, locale, created_at) "
                         "VALUES (%s, %s, %s, %s, %s, 'viewer', 'en-GB', now())", (uid, t, email, name, phone))
            note("users", uid)
            conn.execute("INSERT INTO bookings (id, tenant_id, user_id, catalog_item_id, status, guests, starts_at, "
                         "ends_at, notes, created_at) VALUES (%s, %s, %s, %s, 'confirmed', 2, now(), "
                         "now() + interval '1 hour', %s, now())",
                         (uid, t, uid, cat, f"Call me on {phone} or mail {email.lower()}. Paid with {card}; thanks!"))
            note("bookings", uid)
            conn.execute("INSERT INTO payments (id, tenant_id, booking_id, user_id, amount_cents, currency, status, "
                         "provider, provider_ref, card_brand, card_last4, card_holder, created_at) VALUES "
                         "(%s, %s, %s, %s, 1000, 'EUR', 'captured', 'stripe', %s, 'visa', %s, %s, now())",
                         (uid, t, uid, uid, f"pi_live_{uid}_{t}", card.replace(" ", "").replace("-", "")[-4:],
                          name.upper()))
            note("payments", uid)
            conn.execute("INSERT INTO content_revisions (id, content_item_id, revision, editor_id, summary, body, "
                         "created_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
                         (uid, item, 1000 + i, uid, f"Contact {email}",
                          f"Interview notes.\nReach them at {email} or {phone}.\n"
                          f"Card on file: {other_card}. Backup: {card}\n(end)"))
            note("content_revisions", uid)
            payload = {"template": "booking_confirmed", "to": email, "phone": phone, "card_number": card,
                       "name": name,
                       "context": {"note": f"ring {phone}\nor write to {email}", "cards": [other_card],
                                   "raw": int(card.replace(" ", "").replace("-", ""))},
                       "history": [f"sent to {email}", {"Recipient": email}],
                       "escaped": f"line one\n{phone}\ttab"}
            conn.execute("INSERT INTO notifications (id, tenant_id, user_id, channel, template, payload, status, "
                         "created_at) VALUES (%s, %s, %s, 'email', 'booking_confirmed', %s, 'sent', now())",
                         (uid, t, uid, Jsonb(payload)))
            note("notifications", uid)
    return out


def remaining(conn, originals: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(table.column, kind, value) for every original value still present anywhere in a text or JSON column.

    The test's own search, independent of the scanner: plain case-insensitive substring matches of the
    values as written, and of card numbers' digits in the digits of each column.
    """
    cols = conn.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                           WHERE table_schema = 'public' AND data_type IN ('text', 'character varying',
                                 'character', 'json', 'jsonb')""").fetchall()
    found = []
    for table, column, _ in cols:
        text = f'"{column}"::text'
        for kind in ("emails", "phones", "names"):
            for value in originals[kind]:
                hit = conn.execute(f'SELECT count(*) FROM "{table}" WHERE strpos(lower({text}), lower(%s)) > 0',
                                   (value,)).fetchone()[0]
                if hit:
                    found.append((f"{table}.{column}", kind, value))
        for value in set(originals["cards"]):
            digits = "".join(ch for ch in value if ch.isdigit())
            hit = conn.execute(f"""SELECT count(*) FROM "{table}"
                                   WHERE strpos(regexp_replace({text}, '[^0-9]', '', 'g'), %s) > 0""",
                               (digits,)).fetchone()[0]
            if hit:
                found.append((f"{table}.{column}", "cards", value))
    return found
