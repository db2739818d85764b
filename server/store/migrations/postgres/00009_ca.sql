-- The embedded CA's own database (issue 18) when Cordon runs on
-- PostgreSQL: every certificate the authority signed, its revocations
-- and its CRL, which it kept in bbolt in the data dir before, so that
-- several cordon-server processes share one CA state and the data dir
-- holds only keys and settings. The tables are those smallstep's nosql
-- PostgreSQL driver makes, one per bucket of certificates v0.30's
-- authority database, in the schema "<Cordon's schema>_ca"
-- (public_ca by default): the driver's names (x509_certs, used_ott...)
-- are its own, and made here the driver's CREATE TABLE IF NOT EXISTS at
-- each start finds them, instead of racing another process starting
-- at the same moment. pki imports a bbolt file left from before once.
-- cordon_ca_root, in the same key-value shape, is Cordon's: the root
-- fingerprint of the CA the database belongs to, written by the first
-- start, so that a server started on another data dir's CA is refused.
-- On SQLite the CA keeps bbolt in the data dir.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    ca text := current_schema() || '_ca';
    t text;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', ca);
    FOREACH t IN ARRAY ARRAY['revoked_x509_certs', 'x509_certs', 'used_ott', 'ssh_certs', 'ssh_hosts',
        'ssh_host_principals', 'ssh_users', 'revoked_ssh_certs', 'x509_certs_data', 'x509_crl', 'cordon_ca_root'] LOOP
        EXECUTE format('CREATE TABLE %I.%I (nkey BYTEA CHECK (octet_length(nkey) <= 255), nvalue BYTEA, PRIMARY KEY (nkey))', ca, t);
    END LOOP;
END
$$;
-- +goose StatementEnd
