"""Fixtures shared by every test: real servers started on loopback."""

from tests.servers.alertmanager import alertmanager  # noqa: F401 - fixture
from tests.servers.dovecot import dovecot, imap_mailbox  # noqa: F401 - fixtures
from tests.servers.mariadb import mariadb_url  # noqa: F401 - fixture
from tests.servers.postgres import postgres_url  # noqa: F401 - fixture
from tests.servers.replay import replay  # noqa: F401 - fixture
from tests.servers.smtp import smtp_server  # noqa: F401 - fixture
from tests.store_fixtures import pg_store, store  # noqa: F401 - fixtures
