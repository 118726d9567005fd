-- Access-token signing keys, shared by every instance (they used to be a file in each
-- instance's data dir): the newest key not retiring signs, and every key not retired verifies
-- and is published in the JWKS. A rotation adds a key and gives the ones before it
-- `retire_after`, the moment the last access token they signed has expired; after that the
-- purge job retires them: `retired_at` set, the private key erased, the row kept so that an
-- old key file naming it is never imported again.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('EdDSA')),
    -- The public key as the JWK shows it (base64url, `x` of an OKP key).
    public_key TEXT NOT NULL,
    -- The private key (PKCS#8), sealed with the master key like session keys.
    private_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retire_after TIMESTAMP,
    retired_at TIMESTAMP
);

-- The app a login came through (its access tokens name it); NULL for logins before this.
ALTER TABLE sessions ADD COLUMN app_id TEXT;
-- A server-driven login's ticket carries the app to the session it is redeemed for.
ALTER TABLE login_tickets ADD COLUMN app_id TEXT;
