"""What deleting a user cleans up besides JupyterHub's own records, from the authenticator's
delete_user hook, which JupyterHub awaits before it deletes the user's servers:

- every server of theirs still running: JupyterHub stops only the default one, and the named ones
  mount the home volume that the default server's delete_forever then removes (DevhubSpawner);
- their SSH keys (devhub.ssh_keystore).

devhub.auth mixes DeletesUserResources into whichever authenticator the settings choose.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future
from traitlets import Any

from .ssh_keystore import owner_of


class DeletesUserResources(Authenticator):
    ssh_key_store = Any(
        None, help="devhub.ssh_keystore.KeyStore of users' SSH keys: a deleted user's go with them (set by devhub.config)."
    ).tag(config=True)

    async def delete_user(self, user):
        await stop_running_servers(user, self.log)
        delete_ssh_keys(self.ssh_key_store, user, self.log)
        await maybe_future(super().delete_user(user))


def with_user_deletion(cls: type) -> type:
    """`cls` (an Authenticator class) with DeletesUserResources mixed in; its config section stays `cls`'s."""
    return type(f"Devhub{cls.__name__}", (DeletesUserResources, cls), {})


async def stop_running_servers(user, log) -> None:
    proxy = (getattr(user, "settings", None) or {}).get("proxy")
    for name, spawner in list(user.spawners.items()):
        if spawner.active:
            log.info("User %s deleted; stopping server %r", user.name, name)
            if proxy is not None:  # as the hub's own stop does: no route to a server that is going
                await proxy.delete_user(user, name)
            await user.stop(name)


def delete_ssh_keys(store, user, log) -> None:
    if store is None:
        return
    orm_user = getattr(user, "orm_user", None)
    removed = store.delete_user(owner_of(orm_user) if orm_user is not None else None, user.name)
    log.info("User %s deleted; removed %d SSH key(s)", user.name, removed)
