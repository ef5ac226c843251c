// sign.js signs regshift requests in a browser with WebCrypto, byte for
// byte as events.Signer does in Go (docs/publishing-requests.md, "Signing").
// itest/browser's TestWebCryptoSignsLikeGo checks this very file against Go
// in headless Chromium; the console's app.js imports it (an ES module, no
// dependencies).
//
//	import { importSigningKey, keyID, signRequest } from "./sign.js";
//	const key = await importSigningKey(await file.text()); // a `regshift keys generate` .key
//	const sig = await signRequest(key, "regshift.request.pause.v1", body);
//	// send body's exact UTF-8 bytes with ce_keyid = keyID(file.name), ce_signature = sig
//
// The key is imported non-extractable: the page can sign with it, but
// neither it nor any script can read the private key back out.
// WebCrypto's Ed25519 needs a secure context (https, or http on
// 127.0.0.1 / localhost) and Chromium 137, Firefox 129 or Safari 17.

const utf8 = new TextEncoder();

// pemToDER returns the bytes of the first PEM block with the label, e.g.
// "PRIVATE KEY" (PKCS #8), as events.LoadSigner reads it.
export function pemToDER(pem, label = "PRIVATE KEY") {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const from = pem.indexOf(begin);
  const to = from < 0 ? -1 : pem.indexOf(end, from + begin.length);
  if (to < 0) {
    throw new Error(`no PEM "${label}" block`);
  }
  const bin = atob(pem.slice(from + begin.length, to).replace(/\s+/g, ""));
  const der = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) {
    der[i] = bin.charCodeAt(i);
  }
  return der;
}

// importSigningKey imports the Ed25519 private key of a .key file (PEM
// "PRIVATE KEY", PKCS #8) for signing only, not extractable.
export function importSigningKey(pem) {
  return crypto.subtle.importKey("pkcs8", pemToDER(pem), { name: "Ed25519" }, false, ["sign"]);
}

// keyID is the key id of a key file: its name without the folder and
// ".key". A signed request's requested_by must be it.
export function keyID(fileName) {
  return fileName.replace(/^.*[\\/]/, "").replace(/\.key$/, "");
}

// bytesOf is a body's bytes: a string is encoded as UTF-8, the bytes a
// request carries; a Uint8Array is taken as it is.
function bytesOf(body) {
  return typeof body === "string" ? utf8.encode(body) : body;
}

// pae is DSSE's pre-authentication encoding, the bytes a signature covers:
//
//	"DSSEv1" SP len(type) SP type SP len(body) SP body
//
// with the lengths in bytes (of the UTF-8 encoding, not string.length,
// which counts UTF-16 units) in ASCII decimal, as events.PAE.
export function pae(type, body) {
  const t = utf8.encode(type);
  const b = bytesOf(body);
  const parts = [utf8.encode(`DSSEv1 ${t.length} `), t, utf8.encode(` ${b.length} `), b];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// base64 is standard, padded base64, the encoding of ce_signature.
export function base64(bytes) {
  let bin = "";
  for (const b of bytes) {
    bin += String.fromCharCode(b);
  }
  return btoa(bin);
}

// signRequest signs body (a string, sent as its UTF-8 bytes, or a
// Uint8Array) as a message of the type with key, and returns the
// signature for ce_signature.
export async function signRequest(key, type, body) {
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, key, pae(type, body));
  return base64(new Uint8Array(sig));
}
