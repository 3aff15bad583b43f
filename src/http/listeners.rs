//! A front-end's listening sockets while the server runs: bound at start, then kept,
//! changed, added or stopped when a configuration reload changes its `listen` list, as
//! nginx does on SIGHUP.
//!
//! A change is made in two steps, so that a reload applies whole or not at all: [`plan`]
//! binds every address the new list adds (it may fail: the error names the address, and
//! the sockets bound so far close with the plan, so nothing changed), and
//! [`FrontListeners::apply`], which cannot fail, starts the new listeners, changes the kept
//! ones and stops the others.
//!
//! A listener of the new list is the running one with the same configured address (a
//! configured port 0 matches the running port-0 listeners in order). It keeps its socket,
//! so that no client connecting during the reload is refused, and its open connections are
//! left alone; when its `tls` or `proxy_protocol` changed, connections accepted from then
//! on get the new setting (and its counters start anew). A running listener the new list
//! does not have stops accepting at once — its socket is closed, so connections to it are
//! refused — and drains as at shutdown: requests in flight finish, a kept-alive HTTP/1.1
//! connection is closed after its request in flight, an HTTP/2 one gets GOAWAY, and what
//! is still open after [`super::listener::DRAIN_TIMEOUT`] is closed. An address cannot move
//! to a listener that overlaps it in one reload (`127.0.0.1:443` to `0.0.0.0:443`): the
//! new socket cannot be bound while the old one listens, so such a reload is refused.
//!
//! It does not decide what a listener serves (the front-end's [`FrontState`]) nor which
//! certificate a handshake gets ([`super::tls`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::ListenerConfig;
use super::listener::{self, FrontState, Listener};
use super::metrics::{HttpListeners, ListenerMetrics};
use super::{FrontError, Handler, Role};

/// The listeners' tasks, which the server waits for when it stops (each one drains).
#[derive(Clone, Default)]
pub(crate) struct ListenerTasks(Arc<Mutex<JoinSet<()>>>);

impl ListenerTasks {
    fn lock(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static, runtime: &Handle) {
        let mut tasks = self.lock();
        // Listeners a reload stopped and that have drained, reaped rather than kept.
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(task, runtime);
    }

    /// Waits until every listener has stopped (after the shutdown began: drained).
    pub(crate) async fn join(&self) {
        let mut tasks = std::mem::take(&mut *self.lock());
        while tasks.join_next().await.is_some() {}
    }
}

/// Where the front-ends' listeners run, and where they are shown.
#[derive(Clone)]
pub(crate) struct Serving {
    /// Every listener stops and drains when this is cancelled.
    pub shutdown: CancellationToken,
    pub tasks: ListenerTasks,
    /// Every HTTP listener, for `/metrics` and `/status`.
    pub registry: Arc<HttpListeners>,
    pub runtime: Handle,
}

/// One front-end's running listeners.
pub(crate) struct FrontListeners<H> {
    role: Role,
    /// The app and settings every listener of the front-end serves.
    front: Arc<ArcSwap<FrontState<H>>>,
    /// For its TLS listeners: certificates of the front-end's part of the live set.
    acceptor: TlsAcceptor,
    /// In configuration order.
    running: Vec<Running<H>>,
}

/// One running listener.
struct Running<H> {
    config: ListenerConfig,
    /// As bound (a configured port 0 resolved).
    bound: SocketAddr,
    settings: Arc<ArcSwap<Listener<H>>>,
    /// Stops this listener alone (a child of the shutdown token).
    stop: CancellationToken,
}

/// The listeners a new `listen` list asks for, with the sockets it adds already bound.
pub(crate) struct Plan {
    next: Vec<(ListenerConfig, Source)>,
}

enum Source {
    /// The running listener at this index.
    Kept(usize),
    /// A new socket, and the address it got.
    Bound(TcpListener, SocketAddr),
}

/// Binds what `next` adds to the listeners `running` of `role` (their configurations, in
/// order): see the module documentation for which are kept. A socket that cannot be bound
/// is an error naming its address; those bound before it are closed.
pub(crate) fn plan(
    role: Role,
    running: &[ListenerConfig],
    next: &[ListenerConfig],
    runtime: &Handle,
) -> Result<Plan, FrontError> {
    let mut claimed = vec![false; running.len()];
    let mut planned = Vec::with_capacity(next.len());
    for l in next {
        let kept = (0..running.len()).find(|&i| !claimed[i] && running[i].address == l.address);
        let source = match kept {
            Some(i) => {
                claimed[i] = true;
                Source::Kept(i)
            }
            None => {
                let (tcp, bound) = bind(l.address, runtime).map_err(|source| FrontError::Bind {
                    role: role.name(),
                    addr: l.address,
                    source,
                })?;
                Source::Bound(tcp, bound)
            }
        };
        planned.push((*l, source));
    }
    Ok(Plan { next: planned })
}

/// A listening socket on `addr`, as tokio's `TcpListener::bind` makes one (`SO_REUSEADDR`,
/// so that a port whose old connections wait in TIME_WAIT can be listened on again at
/// once), registered with `runtime`: callable from a reload's blocking thread.
fn bind(addr: SocketAddr, runtime: &Handle) -> std::io::Result<(TcpListener, SocketAddr)> {
    let _in_runtime = runtime.enter();
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(1024)?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

impl<H: Handler> FrontListeners<H> {
    /// No listeners yet, serving `front`; TLS listeners choose among `role`'s part of the
    /// live certificate set through `acceptor`.
    pub(crate) fn new(
        role: Role,
        front: Arc<ArcSwap<FrontState<H>>>,
        acceptor: TlsAcceptor,
    ) -> FrontListeners<H> {
        FrontListeners {
            role,
            front,
            acceptor,
            running: Vec::new(),
        }
    }

    /// The app and settings the listeners serve, which a configuration reload replaces.
    pub(crate) fn front(&self) -> &Arc<ArcSwap<FrontState<H>>> {
        &self.front
    }

    /// The running listeners' addresses as bound, in configuration order.
    pub(crate) fn addresses(&self) -> Vec<SocketAddr> {
        self.running.iter().map(|r| r.bound).collect()
    }

    /// The running listeners' configurations, in order: what [`plan`] compares with.
    pub(crate) fn configs(&self) -> Vec<ListenerConfig> {
        self.running.iter().map(|r| r.config).collect()
    }

    /// Makes the running listeners those of `plan` (made by [`plan`] against
    /// [`FrontListeners::configs`]): starts the new ones on `serving`, changes the kept
    /// ones whose settings differ, stops the others. `reload`: log each change (the start's
    /// listeners are logged with the others once all are bound).
    pub(crate) fn apply(&mut self, plan: Plan, serving: &Serving, reload: bool) {
        let role = self.role.name();
        let mut old: Vec<Option<Running<H>>> = std::mem::take(&mut self.running)
            .into_iter()
            .map(Some)
            .collect();
        for (config, source) in plan.next {
            let running = match source {
                Source::Kept(i) => {
                    let Some(mut kept) = old.get_mut(i).and_then(Option::take) else {
                        // A plan is made against the running list; nothing else changes it.
                        continue;
                    };
                    if kept.config != config {
                        kept.settings
                            .store(Arc::new(self.listener(&config, kept.bound)));
                        kept.config = config;
                        info!(
                            addr = %kept.bound,
                            tls = config.tls,
                            proxy_protocol = config.proxy_protocol,
                            "{role} listener changed: new connections get its new settings"
                        );
                    }
                    kept
                }
                Source::Bound(tcp, bound) => {
                    let settings = Arc::new(ArcSwap::from_pointee(self.listener(&config, bound)));
                    let stop = serving.shutdown.child_token();
                    serving.tasks.spawn(
                        listener::serve(
                            tcp,
                            settings.clone(),
                            stop.clone(),
                            serving.shutdown.clone(),
                        ),
                        &serving.runtime,
                    );
                    if reload {
                        info!(
                            addr = %bound,
                            tls = config.tls,
                            proxy_protocol = config.proxy_protocol,
                            "{role} listening"
                        );
                    }
                    Running {
                        config,
                        bound,
                        settings,
                        stop,
                    }
                }
            };
            self.running.push(running);
        }
        // Each logs that it stopped once its socket is closed (`listener::serve`).
        for stopped in old.into_iter().flatten() {
            stopped.stop.cancel();
        }
        self.register(serving);
    }

    /// Stops every listener (the front-end's section was removed); each drains.
    pub(crate) fn stop(mut self, serving: &Serving) {
        for stopped in self.running.drain(..) {
            stopped.stop.cancel();
        }
        self.register(serving);
    }

    /// Shows the running listeners in `/metrics` and `/status`, in place of the previous.
    fn register(&self, serving: &Serving) {
        let metrics = self
            .running
            .iter()
            .map(|r| r.settings.load().metrics.clone())
            .collect();
        serving.registry.set(self.role.name(), metrics);
    }

    /// The settings of listener `config`, bound on `bound`.
    fn listener(&self, config: &ListenerConfig, bound: SocketAddr) -> Listener<H> {
        let part = self.role.part();
        Listener {
            role: self.role.name(),
            front: self.front.clone(),
            tls: config.tls.then(|| self.acceptor.clone()),
            proxy_protocol: config.proxy_protocol,
            metrics: Arc::new(ListenerMetrics::new(
                self.role.name(),
                bound,
                config.proxy_protocol,
                config.tls.then_some(part),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str, tls: bool) -> ListenerConfig {
        ListenerConfig {
            address: addr.parse().expect("address"),
            tls,
            proxy_protocol: false,
        }
    }

    fn kept(plan: &Plan) -> Vec<Option<usize>> {
        plan.next
            .iter()
            .map(|(_, s)| match s {
                Source::Kept(i) => Some(*i),
                Source::Bound(..) => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_listener_is_kept_by_its_configured_address_and_a_new_one_is_bound() {
        let runtime = Handle::current();
        let running = [at("127.0.0.1:0", false), at("127.0.0.1:0", true)];
        // Port 0 twice: matched in order; a third is bound anew.
        let next = [
            at("127.0.0.1:0", true),
            at("127.0.0.1:0", false),
            at("127.0.0.1:0", false),
        ];
        let p = plan(Role::Redirect, &running, &next, &runtime).expect("plan");
        assert_eq!(kept(&p), [Some(0), Some(1), None]);
        let added: Vec<SocketAddr> = p
            .next
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Bound(_, addr) => Some(*addr),
                Source::Kept(_) => None,
            })
            .collect();
        assert_eq!(added.len(), 1);
        assert_ne!(added[0].port(), 0);
        // Bound: another socket cannot listen there now.
        assert!(std::net::TcpListener::bind(added[0]).is_err());
    }

    #[tokio::test]
    async fn a_port_that_cannot_be_bound_fails_the_plan_and_closes_what_it_bound() {
        let runtime = Handle::current();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken_addr = taken.local_addr().expect("addr");
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let free_addr = free.local_addr().expect("addr");
        drop(free);
        let next = [
            at(&free_addr.to_string(), false),
            at(&taken_addr.to_string(), false),
        ];
        let Err(e) = plan(Role::Proxy, &[], &next, &runtime) else {
            panic!("a taken port was bound");
        };
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("proxy: cannot listen on {taken_addr}: ")),
            "{text}"
        );
        // The socket bound before the failure was closed with the plan.
        std::net::TcpListener::bind(free_addr).expect("the first address is free again");
    }
}
