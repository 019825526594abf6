"""The CMS schema (schema.sql) and deterministic sample data, generated inside PostgreSQL.

Every value derives from the row number through PostgreSQL's hashtextextended, never from random():
the same size gives identical tables on every build (on the same PostgreSQL and CPU architecture).
Rows spread over tenants round-robin (row i belongs to tenant 1 + (i-1) % T), so a row's references
can be drawn from its own tenant by arithmetic alone. Foreign keys and indexes are added after the
rows: one bulk check per key instead of a trigger per row.
"""

from __future__ import annotations


from ..errors import BadInput

DEFAULT_SIZE = 10_000
MIN_SIZE, MAX_SIZE = 1_000, 20_000_000

TABLES = ("tenants", "users", "content_items", "content_revisions", "media", "catalog_items", "bookings",
          "payments", "notifications")
# Share of the rows each table gets; tenants get one per 500 rows, notifications the remainder.
SHARES = {"users": 0.15, "catalog_items": 0.08, "content_items": 0.12, "content_revisions": 0.20,
          "media": 0.10, "bookings": 0.12, "payments": 0.10}


def validate_size(size: int) -> int:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise BadInput(f"--size must be between {MIN_SIZE:,} and {MAX_SIZE:,} rows, not {size:,}")
    return size


def counts(size: int) -> dict[str, int]:
    """Rows per table for `size` rows in all (they add up to exactly size)."""
    validate_size(size)
    c = {"tenants": max(2, size // 500)} | {table: int(size * share) for table, share in SHARES.items()}
    c["notifications"] = size - sum(c.values())
    return {table: c[table] for table in TABLES}


AFTER_DATA = "-- @after-data"


def schema_sql() -> tuple[str, str]:
    """(tables, what follows the data: foreign keys and indexes)."""
    from importlib import resources  # here, not at the top: `taly --help` imports this module

    text = resources.files(__package__).joinpath("schema.sql").read_text()
    tables, _, after = text.partition(AFTER_DATA)
    return tables, after.split("\n", 1)[1] if after else ""


_FUNCTIONS = [
    # A non-negative 63-bit number from (n, salt): the only source of variety. Every operation in these
    # bodies is immutable (n::text, not text || bigint), so the planner inlines them: ~3x faster.
    """CREATE FUNCTION pg_temp.h(n bigint, salt text) RETURNS bigint LANGUAGE sql IMMUTABLE
       AS $$ SELECT hashtextextended(salt || ':' || n::text, 42) & 9223372036854775807 $$""",
    """CREATE FUNCTION pg_temp.pick(arr text[], n bigint, salt text) RETURNS text LANGUAGE sql IMMUTABLE
       AS $$ SELECT arr[1 + pg_temp.h(n, salt) % array_length(arr, 1)] $$""",
    # The id of one of tenant t's rows in a table of `total` rows spread round-robin over `tenants`.
    """CREATE FUNCTION pg_temp.member(t bigint, total bigint, tenants bigint, n bigint, salt text) RETURNS bigint
       LANGUAGE sql IMMUTABLE AS $$ SELECT t + tenants * (pg_temp.h(n, salt) % (total / tenants)) $$""",
]

_FIRST = ("ARRAY['Amelia','Oliver','Isla','Noah','Ava','Leo','Mia','Arthur','Sofia','Luca','Freya','Hugo','Elena',"
          "'Mateo','Chloe','Jonas','Ines','Tomas','Nora','Felix','Aisha','Omar','Priya','Ravi','Mei','Kenji','Zara',"
          "'Ibrahim','Lena','Marco','Clara','Diego','Hannah','Sven','Ana','Pablo','Grace','Theo','Maya','Yusuf']")
_LAST = ("ARRAY['Smith','Jones','Taylor','Brown','Williams','Wilson','Garcia','Martin','Muller','Schmidt','Rossi',"
         "'Bianchi','Dubois','Moreau','Novak','Kowalski','Silva','Santos','Jensen','Larsen','Murphy','Kelly','Patel',"
         "'Shah','Khan','Ali','Tanaka','Sato','Kim','Park','Nguyen','Tran','Cohen','Levi','Ivanova','Popescu',"
         "'Horvat','Nagy','OBrien','Fischer']")
_ADJ = ("ARRAY['Northern','Harbour','Golden','Quiet','Urban','Coastal','Alpine','Bright','Modern','Classic','Green',"
        "'Royal','Silver','Open','Grand','Little']")
_NOUN = ("ARRAY['Studio','Gallery','Market','Table','Garden','Theatre','Journal','Kitchen','Workshop','Harbour',"
         "'Library','Atelier','Courtyard','Pavilion','Voyage','Lantern']")


def _inserts(c: dict[str, int]) -> list[str]:
    T, U, CI, CR = c["tenants"], c["users"], c["content_items"], c["content_revisions"]
    M, CA, B, P, N = c["media"], c["catalog_items"], c["bookings"], c["payments"], c["notifications"]
    epoch = "timestamptz '2022-01-01 00:00:00+00'"
    return [
        f"""INSERT INTO tenants
            SELECT i, lower(w.a) || '-' || lower(w.n) || '-' || i, w.a || ' ' || w.n,
                   pg_temp.pick(ARRAY['free','team','team','business','enterprise'], i, 'plan'),
                   pg_temp.pick(ARRAY['eu-west-1','eu-central-1','us-east-1'], i, 'region'),
                   {epoch} + make_interval(days => (pg_temp.h(i, 'tc') % 700)::int)
            FROM generate_series(1, {T}) i,
                 LATERAL (SELECT pg_temp.pick({_ADJ}, i, 'ta') AS a, pg_temp.pick({_NOUN}, i, 'tn') AS n) w""",
        f"""INSERT INTO users
            SELECT i, t.id, lower(n.f) || '.' || lower(n.l) || i || '@' || t.slug || '.example.com', n.f || ' ' || n.l,
                   CASE WHEN pg_temp.h(i, 'hasphone') % 10 < 8
                        THEN '+44 7700 ' || lpad((pg_temp.h(i, 'phone') % 1000000)::text, 6, '0') END,
                   CASE WHEN i <= {T} THEN 'owner'
                        ELSE pg_temp.pick(ARRAY['admin','editor','editor','author','author','author','viewer'], i, 'role') END,
                   pg_temp.pick(ARRAY['en-GB','en-US','de-DE','fr-FR','es-ES','it-IT','nl-NL'], i, 'locale'),
                   n.created,
                   CASE WHEN pg_temp.h(i, 'login') % 10 < 9
                        THEN n.created + make_interval(days => (pg_temp.h(i, 'ld') % 200)::int) END
            FROM generate_series(1, {U}) i
            JOIN tenants t ON t.id = 1 + (i - 1) % {T},
            LATERAL (SELECT pg_temp.pick({_FIRST}, i, 'first') AS f, pg_temp.pick({_LAST}, i, 'last') AS l,
                            t.created_at + make_interval(days => (pg_temp.h(i, 'uc') % 300)::int,
                                                         secs => (pg_temp.h(i, 'us') % 86400)::int) AS created) n""",
        f"""INSERT INTO content_items
            SELECT i, x.t, pg_temp.member(x.t, {U}, {T}, i, 'author'), x.kind,
                   lower(replace(x.title, ' ', '-')) || '-' || i, x.title, x.status,
                   CASE WHEN x.status IN ('published', 'archived') THEN x.created + interval '2 days' END,
                   x.created, x.created + make_interval(days => (pg_temp.h(i, 'upd') % 90)::int)
            FROM generate_series(1, {CI}) i,
            LATERAL (SELECT 1 + (i - 1) % {T} AS t,
                            pg_temp.pick(ARRAY['article','article','page','post','post','landing'], i, 'kind') AS kind,
                            pg_temp.pick(ARRAY['draft','review','published','published','published','archived'], i, 'st') AS status,
                            initcap(pg_temp.pick({_ADJ}, i, 'w1')) || ' ' || pg_temp.pick({_NOUN}, i, 'w2') || ' '
                              || pg_temp.pick(ARRAY['Guide','Notes','Review','Update','Story','Digest'], i, 'w3') AS title,
                            {epoch} + make_interval(days => 400 + (pg_temp.h(i, 'cc') % 600)::int,
                                                    secs => (pg_temp.h(i, 'cs') % 86400)::int) AS created) x""",
        f"""INSERT INTO content_revisions
            SELECT r, ci.id, 1 + (r - 1) / {CI}, pg_temp.member(ci.tenant_id, {U}, {T}, r, 'editor'),
                   pg_temp.pick(ARRAY['Fix typos','Rewrite intro','Add images','Update prices','Tighten copy','SEO pass'], r, 'sum'),
                   repeat(ci.title || '. ', 1 + (pg_temp.h(r, 'len') % 12)::int),
                   ci.created_at + make_interval(hours => ((1 + (r - 1) / {CI}) * 6)::int)
            FROM generate_series(1, {CR}) r
            JOIN content_items ci ON ci.id = 1 + (r - 1) % {CI}""",
        f"""INSERT INTO media
            SELECT m, x.t, pg_temp.member(x.t, {U}, {T}, m, 'uploader'),
                   CASE WHEN pg_temp.h(m, 'attached') % 10 < 7 THEN pg_temp.member(x.t, {CI}, {T}, m, 'item') END,
                   'tenants/' || x.t || '/media/' || m || '.' || split_part(x.ct, '/', 2), x.ct,
                   1024 + pg_temp.h(m, 'size') % 8000000,
                   CASE WHEN x.ct LIKE 'image/%' THEN 320 * (1 + (pg_temp.h(m, 'w') % 12)::int) END,
                   CASE WHEN x.ct LIKE 'image/%' THEN 240 * (1 + (pg_temp.h(m, 'hh') % 12)::int) END,
                   encode(sha256(convert_to('media:' || m, 'UTF8')), 'hex'),
                   {epoch} + make_interval(days => 400 + (pg_temp.h(m, 'mc') % 600)::int)
            FROM generate_series(1, {M}) m,
            LATERAL (SELECT 1 + (m - 1) % {T} AS t,
                            pg_temp.pick(ARRAY['image/jpeg','image/jpeg','image/png','image/webp','video/mp4','application/pdf'],
                                         m, 'ct') AS ct) x""",
        f"""INSERT INTO catalog_items
            SELECT i, x.t, 'SKU-' || lpad(i::text, 7, '0'), x.name, 'The ' || lower(x.name) || ', for up to 6 guests.',
                   500 + (pg_temp.h(i, 'price') % 500)::int * 100,
                   (ARRAY['EUR','GBP','USD'])[1 + pg_temp.h(x.t, 'currency') % 3],
                   (pg_temp.h(i, 'stock') % 250)::int, pg_temp.h(i, 'active') % 10 < 9,
                   {epoch} + make_interval(days => 300 + (pg_temp.h(i, 'cac') % 600)::int)
            FROM generate_series(1, {CA}) i,
            LATERAL (SELECT 1 + (i - 1) % {T} AS t,
                            pg_temp.pick({_ADJ}, i, 'ca') || ' ' || pg_temp.pick({_NOUN}, i, 'cn') || ' '
                              || pg_temp.pick(ARRAY['Tour','Class','Tasting','Pass','Session','Evening'], i, 'ck') AS name) x""",
        f"""INSERT INTO bookings
            SELECT b, x.t, pg_temp.member(x.t, {U}, {T}, b, 'booker'), pg_temp.member(x.t, {CA}, {T}, b, 'item'),
                   pg_temp.pick(ARRAY['pending','confirmed','confirmed','confirmed','cancelled','completed','completed'], b, 'bs'),
                   1 + (pg_temp.h(b, 'guests') % 6)::int, x.starts, x.starts + make_interval(hours => 1 + (pg_temp.h(b, 'dur') % 4)::int),
                   CASE pg_temp.h(b, 'notes') % 8 WHEN 0 THEN 'Wheelchair access, please'
                                                 WHEN 1 THEN 'Vegetarian menu' WHEN 2 THEN 'Celebrating a birthday' END,
                   x.starts - make_interval(days => 1 + (pg_temp.h(b, 'lead') % 60)::int)
            FROM generate_series(1, {B}) b,
            LATERAL (SELECT 1 + (b - 1) % {T} AS t,
                            timestamptz '2024-01-01 00:00:00+00' + make_interval(days => (pg_temp.h(b, 'day') % 730)::int,
                                                                                 hours => 8 + (pg_temp.h(b, 'hour') % 12)::int) AS starts) x""",
        f"""INSERT INTO payments
            SELECT p, b.tenant_id, b.id, b.user_id, c.price_cents * b.guests, c.currency,
                   CASE WHEN pg_temp.h(p, 'fail') % 25 = 0 THEN 'failed'
                        WHEN b.status = 'cancelled' THEN 'refunded'
                        WHEN b.status = 'pending' THEN 'authorized' ELSE 'captured' END,
                   x.provider,
                   CASE x.provider WHEN 'stripe' THEN 'pi_' ELSE 'psp_' END || lpad(p::text, 8, '0')
                     || substr(md5('payment:' || p), 1, 12),
                   pg_temp.pick(ARRAY['visa','visa','mastercard','mastercard','amex'], p, 'brand'),
                   lpad((pg_temp.h(p, 'last4') % 10000)::text, 4, '0'), upper(u.full_name),
                   b.created_at + make_interval(mins => 1 + (pg_temp.h(p, 'paid') % 30)::int)
            FROM generate_series(1, {P}) p
            JOIN bookings b ON b.id = p
            JOIN users u ON u.id = b.user_id
            JOIN catalog_items c ON c.id = b.catalog_item_id,
            LATERAL (SELECT pg_temp.pick(ARRAY['stripe','stripe','adyen'], p, 'provider') AS provider) x""",
        f"""INSERT INTO notifications
            SELECT n, x.t, pg_temp.member(x.t, {U}, {T}, n, 'recipient'), x.channel, x.template,
                   jsonb_build_object('template', x.template, 'ref', 'N' || lpad(n::text, 8, '0'),
                                      'locale', pg_temp.pick(ARRAY['en-GB','de-DE','fr-FR'], n, 'nl')),
                   x.status, CASE WHEN x.status = 'sent' THEN x.created + interval '5 seconds' END, x.created
            FROM generate_series(1, {N}) n,
            LATERAL (SELECT 1 + (n - 1) % {T} AS t,
                            pg_temp.pick(ARRAY['email','email','email','sms','push'], n, 'channel') AS channel,
                            pg_temp.pick(ARRAY['welcome','booking_confirmed','payment_receipt','content_published',
                                               'password_reset'], n, 'template') AS template,
                            pg_temp.pick(ARRAY['sent','sent','sent','sent','queued','failed'], n, 'ns') AS status,
                            {epoch} + make_interval(days => 500 + (pg_temp.h(n, 'nc') % 500)::int,
                                                    secs => (pg_temp.h(n, 'ns2') % 86400)::int) AS created) x""",
    ]


def load(conninfo: str, size: int = DEFAULT_SIZE) -> int:
    """Create the schema and `size` rows of sample data in the database conninfo names; returns the row count."""
    from ..adapters.postgres import connect_info

    c = counts(size)
    with connect_info(conninfo, autocommit=False) as conn:
        tables, after_data = schema_sql()
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(tables)
            for sql in _FUNCTIONS + _inserts(c):
                conn.execute(sql)
            conn.execute(after_data)
        conn.autocommit = True
        conn.execute("ANALYZE")
        return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)


def fingerprint(conninfo: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of every row in id order) per table: equal fingerprints mean equal data."""
    from ..adapters.postgres import connect_info

    with connect_info(conninfo) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        out = {}
        for t in TABLES:
            count, digest = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x.id), '')) FROM {t} x").fetchone()
            out[t] = (count, digest)
        return out
