-- The read model the orders feature offers other features (the sales report): what counts as a
-- sale — an order that is not cancelled — and its lines. Readers use these views, never the
-- orders tables or their status values, so orders can change both behind them. PostgreSQL
-- inlines the views, so the partial index on non-cancelled orders still serves range scans.
CREATE VIEW sales AS
    SELECT id AS order_id, created_at, currency, total_cents
    FROM orders
    WHERE status <> 'cancelled';

CREATE VIEW sale_lines AS
    SELECT o.id AS order_id, o.created_at, o.currency, l.product_id, l.sku, l.name, l.quantity,
           l.quantity::bigint * l.unit_price_cents AS revenue_cents
    FROM orders o
    JOIN order_lines l ON l.order_id = o.id
    WHERE o.status <> 'cancelled';
