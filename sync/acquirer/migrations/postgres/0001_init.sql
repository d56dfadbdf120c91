-- The acquirer's store on PostgreSQL: the same tables as the SQLite store. Every node of a
-- fleet runs these migrations at start; schema_migrations records what is applied and an
-- advisory lock lets one node at a time apply them.

-- meta holds the master-key check: a value sealed under the master key, so a node started
-- with another key refuses to start instead of failing every terminal's signature.
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);

CREATE TABLE terminals (
	id         TEXT PRIMARY KEY,
	secret     BYTEA NOT NULL,           -- AES-GCM under the master key: nonce || ciphertext
	policy     TEXT NOT NULL,            -- JSON
	created_at TIMESTAMPTZ NOT NULL
);

-- Request nonces, until they expire: the unique key refuses a replay on any node.
CREATE TABLE nonces (
	terminal   TEXT NOT NULL,
	nonce      TEXT NOT NULL,
	expires_at BIGINT NOT NULL,          -- Unix seconds
	PRIMARY KEY (terminal, nonce)
);
CREATE INDEX nonces_expires ON nonces (expires_at);

CREATE TABLE authorizations (
	terminal        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,       -- hash of the request, to tell a retry from a reuse
	response        TEXT NOT NULL,       -- JSON
	PRIMARY KEY (terminal, idempotency_key)
);

-- Uploaded records, deduplicated for ever on both keys.
CREATE TABLE records (
	terminal        TEXT NOT NULL,
	sequence        BIGINT NOT NULL CHECK (sequence > 0),
	id              TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,
	hash            TEXT NOT NULL,
	prev_hash       TEXT NOT NULL,
	body            TEXT NOT NULL,       -- JSON, without the credential
	received_at     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (terminal, sequence),
	UNIQUE (terminal, idempotency_key)
);

-- Each terminal's high-water mark: every sequence up to it is stored (records are never
-- deleted), so a batch's gaps are computed from the records above it alone.
CREATE TABLE high_water (
	terminal TEXT PRIMARY KEY,
	sequence BIGINT NOT NULL
);

-- The results feed: the cursor is the row's serial number. A terminal's results are
-- written under its advisory lock, so its cursors grow in commit order.
CREATE TABLE results (
	cursor   BIGSERIAL PRIMARY KEY,
	terminal TEXT NOT NULL,
	body     TEXT NOT NULL               -- JSON
);
CREATE INDEX results_terminal ON results (terminal, cursor);

CREATE TABLE orders (
	reference TEXT PRIMARY KEY,
	terminal  TEXT NOT NULL,
	polls     INTEGER NOT NULL DEFAULT 0,
	body      TEXT NOT NULL              -- JSON
);
