-- Authorization state per sale: the terminal asks for an authorization's status by sale id
-- and reverses it when its answer was lost or late; a pending authorization (the wallet
-- asks the customer to confirm) resolves at pending_until; a reversal that arrives before
-- its authorization leaves a tombstone (content = '') that refuses it for ever.

ALTER TABLE authorizations
	ADD COLUMN sale_id       TEXT NOT NULL DEFAULT '',
	ADD COLUMN sequence      BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN amount        BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN currency      TEXT NOT NULL DEFAULT '',
	ADD COLUMN method        TEXT NOT NULL DEFAULT '',
	ADD COLUMN reference     TEXT NOT NULL DEFAULT '',
	ADD COLUMN state         TEXT NOT NULL DEFAULT '',   -- approved, declined, pending_customer, reversed
	ADD COLUMN created_at    TIMESTAMPTZ,
	ADD COLUMN pending_until BIGINT NOT NULL DEFAULT 0,  -- Unix ms: when a pending one resolves
	ADD COLUMN final         TEXT NOT NULL DEFAULT '',   -- JSON: the answer it resolves to
	ADD COLUMN final_state   TEXT NOT NULL DEFAULT '',   -- its decision; '' never (until reversed)
	ADD COLUMN reversal      TEXT NOT NULL DEFAULT '';   -- JSON: the reversal's answer, kept for ever

-- Authorizations stored before this migration: the sale id and decision are in the answer
-- (amount, currency and sequence were not kept: 0).
UPDATE authorizations SET sale_id = coalesce(response::jsonb ->> 'id', ''),
	state = coalesce(response::jsonb ->> 'decision', '');

CREATE INDEX authorizations_sale ON authorizations (terminal, sale_id);

-- The ledger joins each uploaded record to its deferred result by the record's id.
CREATE INDEX results_record ON results (terminal, (body::jsonb ->> 'id'));
