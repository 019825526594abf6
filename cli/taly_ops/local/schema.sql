-- The Taly CMS schema, as the local estate loads it (taly local up). Every row belongs to a tenant.
-- Tables first; their foreign keys and indexes follow, after the @after-data line.

CREATE TABLE tenants (
    id          bigint PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    plan        text NOT NULL CHECK (plan IN ('free', 'team', 'business', 'enterprise')),
    region      text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id             bigint PRIMARY KEY,
    tenant_id      bigint NOT NULL,
    email          text NOT NULL UNIQUE,
    full_name      text NOT NULL,
    phone          text,
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'author', 'viewer')),
    locale         text NOT NULL,
    created_at     timestamptz NOT NULL,
    last_login_at  timestamptz
);

CREATE TABLE content_items (
    id            bigint PRIMARY KEY,
    tenant_id     bigint NOT NULL,
    author_id     bigint NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('article', 'page', 'post', 'landing')),
    slug          text NOT NULL,
    title         text NOT NULL,
    status        text NOT NULL CHECK (status IN ('draft', 'review', 'published', 'archived')),
    published_at  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE content_revisions (
    id               bigint PRIMARY KEY,
    content_item_id  bigint NOT NULL,
    revision         integer NOT NULL,
    editor_id        bigint NOT NULL,
    summary          text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL,
    UNIQUE (content_item_id, revision)
);

CREATE TABLE media (
    id               bigint PRIMARY KEY,
    tenant_id        bigint NOT NULL,
    uploaded_by      bigint NOT NULL,
    content_item_id  bigint,
    s3_key           text NOT NULL UNIQUE,
    content_type     text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes > 0),
    width            integer,
    height           integer,
    checksum_sha256  text NOT NULL,
    created_at       timestamptz NOT NULL
);

CREATE TABLE catalog_items (
    id           bigint PRIMARY KEY,
    tenant_id    bigint NOT NULL,
    sku          text NOT NULL,
    name         text NOT NULL,
    description  text NOT NULL,
    price_cents  integer NOT NULL CHECK (price_cents >= 0),
    currency     char(3) NOT NULL,
    stock        integer NOT NULL,
    active       boolean NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (tenant_id, sku)
);

CREATE TABLE bookings (
    id               bigint PRIMARY KEY,
    tenant_id        bigint NOT NULL,
    user_id          bigint NOT NULL,
    catalog_item_id  bigint NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled', 'completed')),
    guests           integer NOT NULL CHECK (guests > 0),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    notes            text,
    created_at       timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);

CREATE TABLE payments (
    id            bigint PRIMARY KEY,
    tenant_id     bigint NOT NULL,
    booking_id    bigint,
    user_id       bigint NOT NULL,
    amount_cents  integer NOT NULL CHECK (amount_cents >= 0),
    currency      char(3) NOT NULL,
    status        text NOT NULL CHECK (status IN ('authorized', 'captured', 'refunded', 'failed')),
    provider      text NOT NULL,
    provider_ref  text NOT NULL UNIQUE,
    card_brand    text NOT NULL,
    card_last4    char(4) NOT NULL,
    card_holder   text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE notifications (
    id          bigint PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    user_id     bigint NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    template    text NOT NULL,
    payload     jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    sent_at     timestamptz,
    created_at  timestamptz NOT NULL
);

-- @after-data: indexes and foreign keys, added once the rows are in (one bulk check per key, as pg_dump does).

ALTER TABLE users ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE content_items ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE content_items ADD FOREIGN KEY (author_id) REFERENCES users (id);
ALTER TABLE content_revisions ADD FOREIGN KEY (content_item_id) REFERENCES content_items (id) ON DELETE CASCADE;
ALTER TABLE content_revisions ADD FOREIGN KEY (editor_id) REFERENCES users (id);
ALTER TABLE media ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE media ADD FOREIGN KEY (uploaded_by) REFERENCES users (id);
ALTER TABLE media ADD FOREIGN KEY (content_item_id) REFERENCES content_items (id) ON DELETE SET NULL;
ALTER TABLE catalog_items ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE bookings ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE bookings ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE bookings ADD FOREIGN KEY (catalog_item_id) REFERENCES catalog_items (id);
ALTER TABLE payments ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE payments ADD FOREIGN KEY (booking_id) REFERENCES bookings (id);
ALTER TABLE payments ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE notifications ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE notifications ADD FOREIGN KEY (user_id) REFERENCES users (id);

CREATE INDEX users_tenant_idx ON users (tenant_id);
CREATE INDEX content_items_author_idx ON content_items (author_id);
CREATE INDEX content_revisions_editor_idx ON content_revisions (editor_id);
CREATE INDEX media_tenant_idx ON media (tenant_id);
CREATE INDEX media_content_item_idx ON media (content_item_id);
CREATE INDEX bookings_user_idx ON bookings (user_id);
CREATE INDEX bookings_catalog_item_idx ON bookings (catalog_item_id);
CREATE INDEX payments_booking_idx ON payments (booking_id);
CREATE INDEX payments_user_idx ON payments (user_id);
CREATE INDEX notifications_user_idx ON notifications (user_id);
