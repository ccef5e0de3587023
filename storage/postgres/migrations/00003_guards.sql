-- Conditional writes that fail instead of changing nothing, so that a
-- token step sent as one batch (one implicit transaction) writes nothing
-- when its code or refresh token was already used. Both raise SQLSTATE
-- P0002 (no_data_found), which the store maps to the method's error.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION wxoidc_rotate_refresh(sig TEXT, rid TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    -- The refresh row first (by key), then the access rows: the order
    -- every writer keeps. A concurrent rotation of the same token waits
    -- for the row lock, rechecks active and finds it false.
    UPDATE oauth2_refresh SET active = FALSE WHERE signature = sig AND active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh token is not active' USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM oauth2_access WHERE request_id = rid;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION wxoidc_invalidate_code(sig TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE oauth2_code SET active = FALSE WHERE signature = sig AND active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization code is not active' USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION wxoidc_invalidate_code(TEXT);
DROP FUNCTION wxoidc_rotate_refresh(TEXT, TEXT);
