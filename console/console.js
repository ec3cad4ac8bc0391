/*
 * signgate officers' console (docs/CONSOLE.md).  Plain JavaScript, no
 * framework, nothing loaded from elsewhere: the Content-Security-Policy
 * allows this file, console.css and requests to this origin only.
 *
 * Every decision is made here with the officer's security key: the page
 * builds the DSSE envelope of the exact statement the gateway showed
 * (statement + decision line(s)), the challenge is SHA-256 of its PAE,
 * and the assertion becomes the envelope's signature.
 */
'use strict';

const APPROVAL_TYPE = 'application/vnd.signgate.approval.v1+text';
const WAIT_S = 25;
const enc = new TextEncoder();

/* ---- encodings ---- */

function b64(bytes) {
	const u = new Uint8Array(bytes);
	let s = '';
	for (let i = 0; i < u.length; i++)
		s += String.fromCharCode(u[i]);
	return btoa(s);
}

function b64url(bytes) {
	return b64(bytes).replace(/\+/g, '-').replace(/\//g, '_')
	    .replace(/=+$/, '');
}

function unb64url(s) {
	const t = s.replace(/-/g, '+').replace(/_/g, '/');
	const bin = atob(t + '==='.slice((t.length + 3) % 4));
	const u = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++)
		u[i] = bin.charCodeAt(i);
	return u;
}

function pem(der) {
	const lines = b64(der).match(/.{1,64}/g) || [];
	return '-----BEGIN PUBLIC KEY-----\n' + lines.join('\n') +
	    '\n-----END PUBLIC KEY-----';
}

async function sha256(bytes) {
	return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

function concat(a, b) {
	const u = new Uint8Array(a.length + b.length);
	u.set(a, 0);
	u.set(b, a.length);
	return u;
}

/* DSSE's pre-authentication encoding, lengths in bytes. */
function pae(type, body) {
	const t = enc.encode(type);
	return concat(enc.encode('DSSEv1 ' + t.length + ' ' + type + ' ' +
	    body.length + ' '), body);
}

/* ---- the page ---- */

const $ = (id) => document.getElementById(id);
let session = null;             /* {officer, credentials, rp_id, origin} */
let pollGen = 0;                /* a new page stops the old page's poll */

function status(msg, kind) {
	const s = $('status');
	s.textContent = msg || '';
	s.className = kind || '';
}

function show(page) {
	for (const p of ['signin', 'register', 'queue', 'request'])
		$('page-' + p).hidden = p !== page;
}

function el(tag, text, cls) {
	const e = document.createElement(tag);
	if (text !== undefined && text !== null)
		e.textContent = String(text);
	if (cls)
		e.className = cls;
	return e;
}

function facts(dl, rows) {
	dl.replaceChildren();
	for (const [k, v] of rows) {
		if (v === undefined || v === null || v === '')
			continue;
		dl.append(el('dt', k), el('dd', v));
	}
}

class HttpError extends Error {
	constructor(status, detail) {
		super(detail);
		this.status = status;
	}
}

async function api(method, path, body) {
	const opt = { method, credentials: 'same-origin', headers: {} };
	if (body !== undefined) {
		opt.headers['Content-Type'] = 'application/json';
		opt.body = typeof body === 'string' ? body : JSON.stringify(body);
	}
	const r = await fetch(path, opt);
	let j = null;
	try {
		j = await r.json();
	} catch (e) {
		j = null;
	}
	if (!r.ok)
		throw new HttpError(r.status, (j && (j.detail || j.title)) ||
		    ('HTTP ' + r.status));
	return j;
}

/* An assertion of one of the allowed credentials over challenge. */
async function assert(challenge, allow, rpId) {
	const cred = await navigator.credentials.get({ publicKey: {
		challenge,
		rpId,
		allowCredentials: allow.map((id) =>
		    ({ type: 'public-key', id: unb64url(id) })),
		userVerification: 'preferred',
		timeout: 120000,
	} });
	if (!cred)
		throw new Error('no assertion');
	return {
		credential_id: new Uint8Array(cred.rawId),
		authenticator_data: new Uint8Array(cred.response.authenticatorData),
		client_data_json: new Uint8Array(cred.response.clientDataJSON),
		signature: new Uint8Array(cred.response.signature),
	};
}

function assertionBody(a) {
	return {
		credential_id: b64url(a.credential_id),
		authenticator_data: b64url(a.authenticator_data),
		client_data_json: b64url(a.client_data_json),
		signature: b64url(a.signature),
	};
}

/* ---- sign-in, sign-out, registration ---- */

async function signIn() {
	const officer = $('signin-officer').value.trim();
	if (!officer)
		return status('Type your principal name first.', 'error');
	status('Touch your security key…');
	const b = await api('POST', '/api/signin/begin', { officer });
	const a = await assert(unb64url(b.challenge), b.allow, b.rp_id);
	const body = Object.assign({ officer, challenge: b.challenge },
	    assertionBody(a));
	await api('POST', '/api/signin', body);
	status('Signed in.', 'ok');
	await loadSession();
	location.hash = '#/queue';
	route();
}

async function signOut() {
	await api('POST', '/api/signout', {});
	session = null;
	$('who').hidden = true;
	$('signout').hidden = true;
	location.hash = '#/signin';
	route();
}

async function register() {
	const name = $('register-name').value.trim();
	if (!name)
		return status('Type the principal name first.', 'error');
	const cfg = await api('GET', '/api/config');
	status('Touch your security key…');
	const cred = await navigator.credentials.create({ publicKey: {
		rp: { id: cfg.rp_id, name: 'signgate' },
		user: { id: crypto.getRandomValues(new Uint8Array(16)),
		    name, displayName: name },
		challenge: crypto.getRandomValues(new Uint8Array(32)),
		pubKeyCredParams: [{ type: 'public-key', alg: -7 },
		    { type: 'public-key', alg: -257 }],
		attestation: 'none',
		authenticatorSelection: { residentKey: 'preferred',
		    userVerification: 'preferred' },
		timeout: 120000,
	} });
	const spki = cred.response.getPublicKey();
	if (!spki)
		throw new Error('the browser gives no public key for this ' +
		    'credential (its algorithm is neither ES256 nor RS256)');
	const out = $('register-out');
	out.textContent = 'webauthn-key ' + b64url(cred.rawId) + ' rp-id ' +
	    cfg.rp_id + ' origin ' + cfg.origin + '\n' + pem(spki) + '\n';
	out.hidden = false;
	status('Add these lines to principal ' + name + ' in the policy ' +
	    '(and raise its version), then reload the gateway\'s policy.', 'ok');
}

async function loadSession() {
	try {
		session = await api('GET', '/api/session');
	} catch (e) {
		if (e.status !== 401)
			throw e;
		session = null;
	}
	$('who').hidden = !session;
	$('signout').hidden = !session;
	if (session)
		$('who').textContent = 'Officer ' + session.officer;
	return session;
}

/* ---- the queue ---- */

function missingText(m) {
	return (m || []).filter((t) => t.missing > 0)
	    .map((t) => t.missing + ' of ' + t.group).join(', ') || '—';
}

function renderQueue(q) {
	const rows = $('queue-rows');
	rows.replaceChildren();
	for (const it of q.items) {
		const tr = el('tr');
		const a = el('a', it.id.slice(0, 12) + '…');
		a.href = '#/request/' + it.id;
		const td = el('td');
		td.append(a);
		tr.append(td, el('td', it.kind), el('td', it.key),
		    el('td', it.artifact || ''), el('td', it.requester),
		    el('td', it.created_at), el('td', missingText(it.missing)));
		rows.append(tr);
	}
	$('queue-empty').hidden = q.items.length > 0;
}

/* Long-polls path, rendering each new state, until another page starts. */
async function poll(path, render) {
	const gen = ++pollGen;
	let tag = '';
	while (gen === pollGen) {
		try {
			const sep = path.includes('?') ? '&' : '?';
			const j = await api('GET', path + (tag ? sep + 'wait=' +
			    WAIT_S + '&since=' + tag : ''));
			if (gen !== pollGen)
				return;
			tag = j.tag;
			render(j);
		} catch (e) {
			if (gen !== pollGen)
				return;
			if (e.status === 401) {
				session = null;
				location.hash = '#/signin';
				return route();
			}
			status(e.message, 'error');
			await new Promise((r) => setTimeout(r, 2000));
		}
	}
}

/* ---- one request ---- */

let current = null;             /* the request page's last answer */

function renderRequest(j) {
	const q = j.request, k = j.key;
	/* What the status line said was about the state before. */
	if (current && current.request.id === q.id &&
	    current.request.state !== q.state)
		status('The request is now ' + q.state + '.', 'ok');
	current = j;
	$('rq-id').textContent = q.id;
	$('rq-state').textContent = q.state;
	$('rq-state').className = 'state ' + q.state;
	const art = q.artifact || {};
	facts($('rq-facts'), [
		['Kind', q.release ? 'release' : q.grant ? 'grant' : 'request'],
		['Artifact', art.name],
		['Digest', q.digest ? q.digest.algorithm + ':' + q.digest.value : ''],
		['Format', q.format],
		['Requester', q.requester],
		['Policy', q.policy.name + ' version ' + q.policy.version],
		['Still missing', q.state === 'pending' ?
		    missingText(q.required) : ''],
		['Expires', q.state === 'pending' ? q.expires_at : ''],
	]);
	$('rq-statement').textContent = q.statement;
	const hsm = (k && k.hsm) || {};
	facts($('rq-key'), [
		['Name', q.key],
		['Algorithm', k && k.algorithm],
		['SPKI SHA-256', k && k.spki_sha256],
		['HSM token', hsm.token],
		['HSM serial', hsm.serial],
		['HSM make', [hsm.manufacturer, hsm.model].filter(Boolean).join(' ')],
		['HSM site', [hsm.site, hsm.country].filter(Boolean).join(', ')],
	]);
	const h = $('rq-history');
	h.replaceChildren(el('li', q.created_at + ' — created by ' + q.requester));
	for (const d of q.approvals || [])
		h.append(el('li', d.at + ' — ' + d.officer + ' ' +
		    (d.decision === 'approve' ? 'approved' : 'rejected') +
		    (d.reason ? ': ' + d.reason : '') +
		    (d.counts ? '' : ' (does not count)')));
	if (q.cancelled)
		h.append(el('li', q.cancelled.at + ' — cancelled by ' +
		    q.cancelled.by + ': ' + q.cancelled.reason));
	if (q.signature)
		h.append(el('li', 'signed' + (q.signature.log ?
		    ', log index ' + q.signature.log.index : '')));
	else if (q.state !== 'pending' && !q.cancelled)
		h.append(el('li', q.state + (q.error ? ': ' + q.error : '')));
	$('rq-actions').hidden = !(q.state === 'pending' && j.may_decide &&
	    !j.decided);
}

/* The DSSE envelope of a decision on the current request, signed with
 * the security key (not posted). */
async function signDecision(decision, reason) {
	const q = current.request;
	let text = q.statement + 'decision ' + decision + '\n';
	if (decision === 'reject')
		text += 'reason ' + reason + '\n';
	const body = enc.encode(text);
	const challenge = await sha256(pae(APPROVAL_TYPE, body));
	const a = await assert(challenge, session.credentials, session.rp_id);
	return {
		payloadType: APPROVAL_TYPE,
		payload: b64(body),
		signatures: [{
			keyid: session.officer,
			sig: b64(a.signature),
			webauthn: {
				credential_id: b64url(a.credential_id),
				authenticator_data: b64(a.authenticator_data),
				client_data_json: b64(a.client_data_json),
			},
		}],
	};
}

async function decide(decision) {
	const reason = $('rq-reason').value.trim();
	if (decision === 'reject' && !reason)
		return status('A rejection needs a reason.', 'error');
	status('Touch your security key to ' + decision + '…');
	const env = await signDecision(decision, reason);
	const q = await api('POST', '/api/requests/' + current.request.id +
	    '/approvals', env);
	status('Your decision is recorded: the request is ' + q.state + '.',
	    'ok');
}

async function cancelRequest() {
	const reason = $('rq-reason').value.trim();
	if (!reason)
		return status('A cancel needs a reason.', 'error');
	const id = current.request.id;
	const n = await api('POST', '/api/requests/' + id + '/cancel/begin', {});
	const text = 'signgate console cancel v1\nrequest ' + id +
	    '\nofficer ' + session.officer + '\nreason ' + reason +
	    '\nnonce ' + n.nonce + '\n';
	status('Touch your security key to cancel…');
	const a = await assert(await sha256(enc.encode(text)),
	    session.credentials, session.rp_id);
	await api('POST', '/api/requests/' + id + '/cancel',
	    Object.assign({ reason, nonce: n.nonce }, assertionBody(a)));
	status('The request is cancelled.', 'ok');
}

/* ---- routing ---- */

async function route() {
	const h = location.hash || '#/queue';
	pollGen++;
	if (h === '#/register') {
		show('register');
		return;
	}
	if (!session && !(await loadSession())) {
		show('signin');
		return;
	}
	const m = /^#\/request\/([0-9a-f]{32})$/.exec(h);
	if (m) {
		show('request');
		$('rq-actions').hidden = true;
		return poll('/api/requests/' + m[1], renderRequest);
	}
	show('queue');
	return poll('/api/queue', renderQueue);
}

function guard(fn) {
	return () => fn().catch((e) => status(e.message, 'error'));
}

/* For scripted checks: a decision's envelope without posting it. */
window.sgConsole = { signDecision, b64url, unb64url };

document.addEventListener('DOMContentLoaded', () => {
	$('signin-go').addEventListener('click', guard(signIn));
	$('register-go').addEventListener('click', guard(register));
	$('signout').addEventListener('click', guard(signOut));
	$('rq-approve').addEventListener('click', guard(() => decide('approve')));
	$('rq-reject').addEventListener('click', guard(() => decide('reject')));
	$('rq-cancel').addEventListener('click', guard(cancelRequest));
	window.addEventListener('hashchange', () => { status(''); route(); });
	route().catch((e) => status(e.message, 'error'));
});
