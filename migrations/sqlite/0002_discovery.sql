-- Addresses and discovery neighbours reported by agents (RouterOS /ip/address and
-- /ip/neighbor): the evidence topology inference proposes links from. Rows are upserted
-- with the time they were last reported; one no longer reported simply ages.

CREATE TABLE interface_addresses (
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    interface     TEXT NOT NULL,
    address       TEXT NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id, interface, address),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
);

CREATE TABLE discovered_neighbors (
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    interface     TEXT NOT NULL,
    identity      TEXT NOT NULL,
    mac           TEXT NOT NULL,
    address       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id, interface, identity, mac),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
);
