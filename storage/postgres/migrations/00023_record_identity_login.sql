-- A sign-in through a WeChat identity records the login time on the user
-- and on the identity: one function, one statement of the batch instead of
-- two (wxoidc_record_login, then an UPDATE of identities). It fails like
-- wxoidc_record_login when the user is disabled or gone, and then changes
-- neither row.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION wxoidc_record_identity_login(at BIGINT, sub TEXT, app TEXT, oid TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET last_login_at = at WHERE subject = sub AND NOT disabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user is disabled or gone' USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE identities SET last_login_at = at WHERE app_id = app AND open_id = oid;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION wxoidc_record_identity_login(BIGINT, TEXT, TEXT, TEXT);
