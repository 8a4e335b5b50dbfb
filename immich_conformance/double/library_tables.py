"""Tables of a whole library beside the core ones in ``database``: albums and their members, tags, shared links,
user deletion and the asset fields a user can edit. Made at start (idempotent, also on a database from an older
double)."""

from __future__ import annotations

LIBRARY_SCHEMA = """
ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'active';
ALTER TABLE assets ADD COLUMN IF NOT EXISTS exif_edits jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE TABLE IF NOT EXISTS albums (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    album_name text NOT NULL,
    description text NOT NULL DEFAULT '',
    thumbnail_asset_id uuid REFERENCES assets (id) ON DELETE SET NULL,
    is_activity_enabled boolean NOT NULL DEFAULT true,
    asset_order text NOT NULL DEFAULT 'desc',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE TABLE IF NOT EXISTS album_users (
    album_id uuid NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, user_id)
);
CREATE TABLE IF NOT EXISTS album_assets (
    album_id uuid NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, asset_id)
);
CREATE TABLE IF NOT EXISTS tags (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value text NOT NULL,
    color text,
    parent_id uuid REFERENCES tags (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_user_value UNIQUE (user_id, value)
);
CREATE TABLE IF NOT EXISTS tag_assets (
    tag_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, asset_id)
);
CREATE TABLE IF NOT EXISTS shared_links (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key bytea NOT NULL UNIQUE,
    type text NOT NULL,
    album_id uuid REFERENCES albums (id) ON DELETE CASCADE,
    description text,
    password text,
    expires_at timestamptz,
    allow_upload boolean NOT NULL,
    allow_download boolean NOT NULL,
    show_exif boolean NOT NULL,
    slug text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS shared_link_assets (
    shared_link_id uuid NOT NULL REFERENCES shared_links (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    PRIMARY KEY (shared_link_id, asset_id)
);
"""
