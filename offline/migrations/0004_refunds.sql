-- Refunds are journal records in the same chain and sequence as sales: kind 'refund', and
-- parent the refunded sale's id. Existing records are sales. Applied once, by Open.
ALTER TABLE sales ADD COLUMN kind TEXT NOT NULL DEFAULT 'sale' CHECK (kind IN ('sale', 'refund'));
ALTER TABLE sales ADD COLUMN parent TEXT NOT NULL DEFAULT '';
CREATE INDEX sales_parent ON sales (parent) WHERE parent != '';
