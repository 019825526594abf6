-- The CMS schema as `pg_restore --schema-only -f - <dump>` prints it (PostgreSQL 15), for the
-- data refresh's unit tests. Regenerate from any backup of the local estate; an integration test
-- (test_data_refresh.py) checks it still matches what a real backup holds.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: bookings; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.bookings (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    user_id bigint NOT NULL,
    catalog_item_id bigint NOT NULL,
    status text NOT NULL,
    guests integer NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    notes text,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT bookings_check CHECK ((ends_at > starts_at)),
    CONSTRAINT bookings_guests_check CHECK ((guests > 0)),
    CONSTRAINT bookings_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'confirmed'::text, 'cancelled'::text, 'completed'::text])))
);


ALTER TABLE public.bookings OWNER TO taly;

--
-- Name: catalog_items; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.catalog_items (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    price_cents integer NOT NULL,
    currency character(3) NOT NULL,
    stock integer NOT NULL,
    active boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT catalog_items_price_cents_check CHECK ((price_cents >= 0))
);


ALTER TABLE public.catalog_items OWNER TO taly;

--
-- Name: content_items; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.content_items (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    author_id bigint NOT NULL,
    kind text NOT NULL,
    slug text NOT NULL,
    title text NOT NULL,
    status text NOT NULL,
    published_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT content_items_kind_check CHECK ((kind = ANY (ARRAY['article'::text, 'page'::text, 'post'::text, 'landing'::text]))),
    CONSTRAINT content_items_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'review'::text, 'published'::text, 'archived'::text])))
);


ALTER TABLE public.content_items OWNER TO taly;

--
-- Name: content_revisions; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.content_revisions (
    id bigint NOT NULL,
    content_item_id bigint NOT NULL,
    revision integer NOT NULL,
    editor_id bigint NOT NULL,
    summary text NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


ALTER TABLE public.content_revisions OWNER TO taly;

--
-- Name: media; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.media (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    uploaded_by bigint NOT NULL,
    content_item_id bigint,
    s3_key text NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL,
    width integer,
    height integer,
    checksum_sha256 text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT media_size_bytes_check CHECK ((size_bytes > 0))
);


ALTER TABLE public.media OWNER TO taly;

--
-- Name: notifications; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.notifications (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    user_id bigint NOT NULL,
    channel text NOT NULL,
    template text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL,
    sent_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT notifications_channel_check CHECK ((channel = ANY (ARRAY['email'::text, 'sms'::text, 'push'::text]))),
    CONSTRAINT notifications_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'sent'::text, 'failed'::text])))
);


ALTER TABLE public.notifications OWNER TO taly;

--
-- Name: payments; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.payments (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    booking_id bigint,
    user_id bigint NOT NULL,
    amount_cents integer NOT NULL,
    currency character(3) NOT NULL,
    status text NOT NULL,
    provider text NOT NULL,
    provider_ref text NOT NULL,
    card_brand text NOT NULL,
    card_last4 character(4) NOT NULL,
    card_holder text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT payments_amount_cents_check CHECK ((amount_cents >= 0)),
    CONSTRAINT payments_status_check CHECK ((status = ANY (ARRAY['authorized'::text, 'captured'::text, 'refunded'::text, 'failed'::text])))
);


ALTER TABLE public.payments OWNER TO taly;

--
-- Name: tenants; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.tenants (
    id bigint NOT NULL,
    slug text NOT NULL,
    name text NOT NULL,
    plan text NOT NULL,
    region text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT tenants_plan_check CHECK ((plan = ANY (ARRAY['free'::text, 'team'::text, 'business'::text, 'enterprise'::text])))
);


ALTER TABLE public.tenants OWNER TO taly;

--
-- Name: users; Type: TABLE; Schema: public; Owner: taly
--

CREATE TABLE public.users (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    email text NOT NULL,
    full_name text NOT NULL,
    phone text,
    role text NOT NULL,
    locale text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_login_at timestamp with time zone,
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['owner'::text, 'admin'::text, 'editor'::text, 'author'::text, 'viewer'::text])))
);


ALTER TABLE public.users OWNER TO taly;

--
-- Name: bookings bookings_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_pkey PRIMARY KEY (id);


--
-- Name: catalog_items catalog_items_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.catalog_items
    ADD CONSTRAINT catalog_items_pkey PRIMARY KEY (id);


--
-- Name: catalog_items catalog_items_tenant_id_sku_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.catalog_items
    ADD CONSTRAINT catalog_items_tenant_id_sku_key UNIQUE (tenant_id, sku);


--
-- Name: content_items content_items_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_items
    ADD CONSTRAINT content_items_pkey PRIMARY KEY (id);


--
-- Name: content_items content_items_tenant_id_slug_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_items
    ADD CONSTRAINT content_items_tenant_id_slug_key UNIQUE (tenant_id, slug);


--
-- Name: content_revisions content_revisions_content_item_id_revision_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_revisions
    ADD CONSTRAINT content_revisions_content_item_id_revision_key UNIQUE (content_item_id, revision);


--
-- Name: content_revisions content_revisions_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_revisions
    ADD CONSTRAINT content_revisions_pkey PRIMARY KEY (id);


--
-- Name: media media_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_pkey PRIMARY KEY (id);


--
-- Name: media media_s3_key_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_s3_key_key UNIQUE (s3_key);


--
-- Name: notifications notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);


--
-- Name: payments payments_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_pkey PRIMARY KEY (id);


--
-- Name: payments payments_provider_ref_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_provider_ref_key UNIQUE (provider_ref);


--
-- Name: tenants tenants_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);


--
-- Name: tenants tenants_slug_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_slug_key UNIQUE (slug);


--
-- Name: users users_email_key; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_email_key UNIQUE (email);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: bookings_catalog_item_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX bookings_catalog_item_idx ON public.bookings USING btree (catalog_item_id);


--
-- Name: bookings_user_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX bookings_user_idx ON public.bookings USING btree (user_id);


--
-- Name: content_items_author_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX content_items_author_idx ON public.content_items USING btree (author_id);


--
-- Name: content_revisions_editor_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX content_revisions_editor_idx ON public.content_revisions USING btree (editor_id);


--
-- Name: media_content_item_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX media_content_item_idx ON public.media USING btree (content_item_id);


--
-- Name: media_tenant_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX media_tenant_idx ON public.media USING btree (tenant_id);


--
-- Name: notifications_user_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX notifications_user_idx ON public.notifications USING btree (user_id);


--
-- Name: payments_booking_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX payments_booking_idx ON public.payments USING btree (booking_id);


--
-- Name: payments_user_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX payments_user_idx ON public.payments USING btree (user_id);


--
-- Name: users_tenant_idx; Type: INDEX; Schema: public; Owner: taly
--

CREATE INDEX users_tenant_idx ON public.users USING btree (tenant_id);


--
-- Name: bookings bookings_catalog_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_catalog_item_id_fkey FOREIGN KEY (catalog_item_id) REFERENCES public.catalog_items(id);


--
-- Name: bookings bookings_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: bookings bookings_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: catalog_items catalog_items_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.catalog_items
    ADD CONSTRAINT catalog_items_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: content_items content_items_author_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_items
    ADD CONSTRAINT content_items_author_id_fkey FOREIGN KEY (author_id) REFERENCES public.users(id);


--
-- Name: content_items content_items_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_items
    ADD CONSTRAINT content_items_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: content_revisions content_revisions_content_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_revisions
    ADD CONSTRAINT content_revisions_content_item_id_fkey FOREIGN KEY (content_item_id) REFERENCES public.content_items(id) ON DELETE CASCADE;


--
-- Name: content_revisions content_revisions_editor_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.content_revisions
    ADD CONSTRAINT content_revisions_editor_id_fkey FOREIGN KEY (editor_id) REFERENCES public.users(id);


--
-- Name: media media_content_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_content_item_id_fkey FOREIGN KEY (content_item_id) REFERENCES public.content_items(id) ON DELETE SET NULL;


--
-- Name: media media_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: media media_uploaded_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_uploaded_by_fkey FOREIGN KEY (uploaded_by) REFERENCES public.users(id);


--
-- Name: notifications notifications_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: notifications notifications_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: payments payments_booking_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_booking_id_fkey FOREIGN KEY (booking_id) REFERENCES public.bookings(id);


--
-- Name: payments payments_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: payments payments_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: users users_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: taly
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- PostgreSQL database dump complete
--


