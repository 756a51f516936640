-- Every change to a product, by the API or by hand, tells each replica's product cache to forget
-- it: NOTIFY is delivered at commit (never for a rolled-back change), to every listening
-- session, and repeated notifications of one transaction are folded into one.
CREATE FUNCTION products_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_products', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER products_notify_change AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION products_notify_change();
