// Signing in the browser: an operator's Ed25519 key (the PKCS#8 PEM file
// `regshift keys generate` writes) is imported with WebCrypto as a
// non-extractable key — it never leaves this page, is never stored, and is
// gone when the tab closes — and signs a request's DSSE pre-authentication
// encoding, as events.PAE does in Go:
//   "DSSEv1" SP len(type) SP type SP len(body) SP body   (lengths in bytes)
"use strict";
const regshiftSign = (() => {
  const enc = new TextEncoder();

  function pemToDER(pem) {
    const m = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
    if (!m) throw new Error("not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)");
    const bin = atob(m[1].replace(/\s+/g, ""));
    const der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    return der;
  }

  // available says whether this browser can sign here: WebCrypto needs a
  // secure context (https, or http on 127.0.0.1 / localhost).
  function available() {
    return !!(window.isSecureContext && window.crypto && crypto.subtle);
  }

  async function importKey(pem) {
    if (!available()) throw new Error("WebCrypto is not available on this page (it needs https or 127.0.0.1)");
    return crypto.subtle.importKey("pkcs8", pemToDER(pem), { name: "Ed25519" }, false, ["sign"]);
  }

  function pae(type, body) {
    const t = enc.encode(type), b = enc.encode(body);
    const headBytes = enc.encode("DSSEv1 " + t.length + " " + type + " " + b.length + " ");
    const out = new Uint8Array(headBytes.length + b.length);
    out.set(headBytes, 0);
    out.set(b, headBytes.length);
    return out;
  }

  function base64(bytes) {
    let s = "";
    for (const x of new Uint8Array(bytes)) s += String.fromCharCode(x);
    return btoa(s);
  }

  async function sign(key, type, body) {
    return base64(await crypto.subtle.sign({ name: "Ed25519" }, key, pae(type, body)));
  }

  return { available, importKey, pae, sign, base64 };
})();
