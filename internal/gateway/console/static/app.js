// Wharf console: one WebSocket client of the gateway (docs/websocket.md).
// It authenticates with an auth request, joins a group, subscribes to a
// topic from the latest offset and lists what arrives. Plain script, no
// dependencies; everything from the wire goes into the DOM as text.
'use strict';

(() => {
  const MAX_ITEMS = 500; // entries kept in each list
  const RESUBSCRIBE_MS = 1000; // retry delay while the topic does not exist
  const MAX_BACKOFF_MS = 30000; // reconnect delay ceiling

  const $ = (id) => document.getElementById(id);

  // Settings from the query: ?user=&password=&group=&topic=.
  const params = new URLSearchParams(location.search);
  const cfg = {
    user: params.get('user'),
    password: params.get('password') || '',
    group: params.get('group') || 'console',
    topic: params.get('topic') || '',
  };
  if (params.has('password')) {
    // Keep the password out of the address bar and the history entry.
    params.delete('password');
    const q = params.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
  }

  let ws = null; // the current socket
  let welcomed = false;
  let nextId = 0;
  let pending = new Map(); // request id -> reply handler, for the current socket
  let backoff = 1000;
  let reconnectTimer = 0;
  let members = new Set();
  const resume = new Map(); // partition -> next offset, to resume after a reconnect

  function setState(id, state, text) {
    const el = $(id);
    el.dataset.state = state;
    el.textContent = text;
  }

  function showError(text) {
    const el = $('error');
    el.textContent = text;
    el.hidden = !text;
  }

  function time() {
    return new Date().toTimeString().slice(0, 8); // HH:MM:SS, local time
  }

  // entry makes a list item of the parts, separated by spaces.
  function entry(cls, ...parts) {
    const li = document.createElement('li');
    li.className = cls;
    parts.forEach((p, i) => li.append(...(i ? [' ', p] : [p])));
    return li;
  }

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function field(name, text) {
    const s = span('field ' + name, '');
    const b = document.createElement('b');
    b.textContent = name + '=';
    s.append(b, text);
    return s;
  }

  function append(listId, li) {
    const list = $(listId);
    list.append(li);
    while (list.childElementCount > MAX_ITEMS) list.firstElementChild.remove();
    li.scrollIntoView({ block: 'nearest' });
  }

  // bytesText renders a key or value of a frame: text, base64 or null.
  function bytesText(f, name) {
    if (typeof f[name] === 'string') return f[name];
    if (typeof f[name + '_b64'] === 'string') return 'base64:' + f[name + '_b64'];
    return '(null)';
  }

  function dataText(data) {
    return typeof data === 'string' ? data : JSON.stringify(data);
  }

  function showMembers() {
    $('members').textContent = members.size ? [...members].sort().join(', ') : '-';
  }

  function addMessage(f) {
    const where = f.group ? 'group ' + f.group : f.broadcast ? 'broadcast' : 'direct';
    const li = entry('message', span('time', time()), span('kind', 'message'),
      span('route', f.from + ' → ' + where + ':'), span('data', dataText(f.data)));
    li.dataset.from = f.from;
    li.dataset.to = where;
    append('messages', li);
  }

  function addPresence(f) {
    if (f.group === cfg.group) {
      if (f.event === 'join') members.add(f.client);
      else if (f.event === 'leave') members.delete(f.client);
      showMembers();
    }
    const what = f.event === 'join' ? 'joined' : f.event === 'leave' ? 'left' : f.event;
    const li = entry('presence', span('time', time()), span('kind', 'presence'),
      span('data', f.client + ' ' + what + ' ' + f.group));
    li.dataset.event = f.event;
    li.dataset.client = f.client;
    append('messages', li);
  }

  function addRecord(f) {
    resume.set(f.partition, f.offset + 1);
    const key = bytesText(f, 'key');
    const value = f.null_value ? '(null)' : bytesText(f, 'value');
    const parts = [span('time', time()), field('partition', String(f.partition)), field('offset', String(f.offset)),
      field('key', key), field('value', value)];
    if (f.headers && f.headers.length) {
      parts.push(field('headers', f.headers.map((h) => h.key + '=' + bytesText(h, 'value')).join(', ')));
    }
    const li = entry('record', ...parts);
    li.dataset.partition = String(f.partition);
    li.dataset.offset = String(f.offset);
    li.dataset.key = key;
    li.dataset.value = value;
    append('records', li);
  }

  function request(frame, onReply) {
    const id = String(++nextId);
    frame.id = id;
    if (onReply) pending.set(id, onReply);
    ws.send(JSON.stringify(frame));
  }

  function join(sock) {
    setState('group-state', 'waiting', 'joining ' + cfg.group);
    request({ type: 'join', group: cfg.group }, (f) => {
      if (f.type !== 'ok') {
        setState('group-state', 'failed', cfg.group + ': ' + f.code + ': ' + f.message);
        return;
      }
      setState('group-state', 'joined', 'joined ' + cfg.group);
      request({ type: 'presence', group: cfg.group }, (p) => {
        if (sock !== ws || p.type !== 'ok') return;
        for (const m of p.members || []) members.add(m);
        showMembers();
      });
    });
  }

  function subscribe(sock) {
    if (sock !== ws || !welcomed) return;
    const frame = { type: 'subscribe', topic: cfg.topic, from: 'latest' };
    if (resume.size) frame.offsets = Object.fromEntries(resume);
    request(frame, (f) => {
      if (sock !== ws) return;
      if (f.type === 'ok') {
        const starts = Object.entries(f.start || {}).map(([p, o]) => 'partition ' + p + ' from ' + o);
        setState('topic-state', 'subscribed', 'subscribed to ' + cfg.topic + ' (' + f.sub + '; ' + starts.join(', ') + ')');
        return;
      }
      if (f.code === 'not_found') {
        setState('topic-state', 'waiting', 'waiting for topic ' + cfg.topic + ' to exist (' + f.message + ')');
        setTimeout(() => subscribe(sock), RESUBSCRIBE_MS);
        return;
      }
      if (f.code === 'out_of_range' && resume.size) {
        resume.clear(); // the topic changed under us: start again from latest
        setTimeout(() => subscribe(sock), 0);
        return;
      }
      setState('topic-state', 'failed', cfg.topic + ': ' + f.code + ': ' + f.message);
    });
  }

  function handle(sock, f) {
    if (f.id !== undefined && pending.has(f.id) && (f.type === 'ok' || f.type === 'error')) {
      const h = pending.get(f.id);
      pending.delete(f.id);
      h(f);
      return;
    }
    switch (f.type) {
      case 'welcome':
        welcomed = true;
        backoff = 1000;
        showError('');
        setState('state', 'connected', 'connected');
        $('client-id').textContent = f.client_id;
        $('session').textContent = f.session;
        members = new Set();
        join(sock);
        if (cfg.topic) subscribe(sock);
        else setState('topic-state', 'idle', 'none (add ?topic=NAME)');
        break;
      case 'message':
        addMessage(f);
        break;
      case 'presence':
        addPresence(f);
        break;
      case 'record':
        addRecord(f);
        break;
      case 'cancelled':
        setState('topic-state', 'waiting', 'subscription ended: ' + f.reason);
        setTimeout(() => subscribe(sock), RESUBSCRIBE_MS);
        break;
      case 'error':
        showError(f.code + ': ' + f.message);
        break;
    }
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const url = new URL('../ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.hash = '';
    setState('state', 'connecting', 'connecting to ' + url.href);
    const sock = new WebSocket(url.href, 'wharf.v1');
    const old = ws;
    ws = sock; // the old socket's handlers ignore it from now on
    if (old) old.close();
    welcomed = false;
    pending = new Map();
    sock.onopen = () => {
      if (cfg.user === null || cfg.user === '') {
        setState('state', 'authenticating', 'connected; waiting for a welcome (no user given)');
        return;
      }
      setState('state', 'authenticating', 'authenticating as ' + cfg.user);
      request({ type: 'auth', username: cfg.user, password: cfg.password }, (f) => {
        if (f.type === 'error' && !welcomed) showError('login refused: ' + f.message);
      });
    };
    sock.onmessage = (ev) => {
      if (sock !== ws || typeof ev.data !== 'string') return;
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      handle(sock, f);
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      welcomed = false;
      const why = 'disconnected (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + ')';
      setState('group-state', 'idle', '-');
      if (cfg.topic) setState('topic-state', 'idle', '-');
      if (ev.code === 4003 || ev.code === 4000) {
        // Refused or never authenticated: ask for credentials.
        setState('state', 'disconnected', why);
        showLogin();
        return;
      }
      setState('state', 'disconnected', why + '; reconnecting in ' + backoff / 1000 + 's');
      reconnectTimer = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
  }

  function showLogin() {
    const form = $('login');
    form.elements.user.value = cfg.user || '';
    form.elements.group.value = cfg.group;
    form.elements.topic.value = cfg.topic;
    form.hidden = false;
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    cfg.user = form.elements.user.value;
    cfg.password = form.elements.password.value;
    cfg.group = form.elements.group.value || 'console';
    cfg.topic = form.elements.topic.value;
    form.elements.password.value = '';
    form.hidden = true;
    showError('');
    resume.clear();
    connect();
  });

  if (cfg.user === null) showLogin();
  else connect();
})();
