-- Refunds (online, and refund records decided at upload), the authorization's capture time
-- and scheme (the totals group sales by them), and the look-up of a record by its id (the
-- sale a refund names).

ALTER TABLE authorizations
	ADD COLUMN captured_at BIGINT NOT NULL DEFAULT 0,  -- Unix ms; 0: not known (before this migration)
	ADD COLUMN scheme      TEXT NOT NULL DEFAULT '';

CREATE INDEX records_id ON records (terminal, id);

CREATE TABLE refunds (
	terminal        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,       -- hash of the refund, to tell a retry from a reuse
	refund_id       TEXT NOT NULL,       -- the refund record's id
	sale_id         TEXT NOT NULL,       -- the refunded sale's id
	sequence        BIGINT NOT NULL,
	amount          BIGINT NOT NULL,
	currency        TEXT NOT NULL,
	decision        TEXT NOT NULL,       -- approved | declined
	reason          TEXT NOT NULL,       -- the terminal's reason for the refund
	response        TEXT NOT NULL,       -- JSON wire.RefundResponse, answered again for ever
	source          TEXT NOT NULL,       -- online | batch
	captured_at     BIGINT NOT NULL,     -- Unix ms: the refund's capture time (totals)
	created_at      TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (terminal, idempotency_key)
);
CREATE UNIQUE INDEX refunds_id ON refunds (terminal, refund_id);
CREATE INDEX refunds_sale ON refunds (terminal, sale_id);
