// Tally's answers checked in the browser, trusting no validator: only a genesis the reader gives.
//
// A read with `?proof=true` carries a state receipt (crates/chain/src/state_receipt.rs): the
// ledger digest's parts, each account and transfer listed with its path to those parts, and the
// finalized header that commits to that state, with the certificate of a quorum of the genesis
// validators (crates/chain/src/certified.rs). This script decodes and checks a receipt exactly
// as `StateReceipt::decode` and `StateReceipt::verify` do in Rust, then checks that every
// account and transfer the page shows is, field for field, one the receipt proves.
//
// BLAKE3 is written here from its specification (the ledger's trees use its keyed mode, its
// chunk chaining values and its parent merges); SHA-256 and Ed25519 come from the browser's
// WebCrypto. Nothing is loaded from anywhere else. The genesis is the reader's: a file they
// load or paste, or one fetched from the validator and shown with its digest (docs/DASHBOARD.md).
//
// Exposes `window.TallyVerify`: `show(node, kind, answer, id)` puts a verdict mark in `node`;
// the rest is for the panel and for tests.
"use strict";

(function () {
  const STORAGE_KEY = "tally.verify.genesis";
  // The chain's constants (crates/chain/src/constants.rs, crates/ledger/src).
  const PROTOCOL_VERSION = 1;
  const HEADER_SIZE = 206;
  const BLOCK_REQUESTS_MAX = 16;
  const CERTIFIED_DESCENDANTS_MAX = 32;
  const OBJECTS_MAX = 8190; // a lookup's limit: the most objects one receipt proves
  const PATH_MAX = 64;
  const OBJECT_SIZE = 128;
  const SEGMENT_ACCOUNTS = 512n;
  const LEAF_LEN = 32n;
  const CONSENSUS_NAMESPACE = "tally/consensus";
  const FINALIZE_SUFFIX = "_FINALIZE";
  const STATE_DIGEST_CONTEXT = "tally 2026 chain state digest v1";
  const U64_MAX = (1n << 64n) - 1n;
  const TRANSFER_PENDING_FLAG = 1 << 1;
  const PENDING_STATUSES = { 1: "pending", 2: "posted", 3: "voided", 4: "expired" };
  const ACCOUNT_FLAGS = ["linked", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits", "history", "imported", "closed"];
  const TRANSFER_FLAGS = ["linked", "pending", "post_pending_transfer", "void_pending_transfer", "balancing_debit", "balancing_credit", "closing_debit", "closing_credit", "imported"];

  /** Why an answer is not verified: the text after "NOT VERIFIED: ". */
  class Unverified extends Error {}

  // ---------------------------------------------------------------------------------------
  // Bytes

  const encoder = new TextEncoder();

  function fromHex(hex, what) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Unverified(what + " is not hex");
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.substr(2 * i, 2), 16);
    return bytes;
  }

  function toHex(bytes) {
    let hex = "";
    for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
    return hex;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  /** `value` (a BigInt below 2^(8 size)) in `size` bytes, big- or little-endian. */
  function uintBytes(value, size, littleEndian) {
    const out = new Uint8Array(size);
    let rest = value;
    for (let i = 0; i < size; i += 1) {
      out[littleEndian ? i : size - 1 - i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
    return out;
  }

  function uintFrom(bytes, littleEndian) {
    let value = 0n;
    for (let i = 0; i < bytes.length; i += 1) value = (value << 8n) | BigInt(bytes[littleEndian ? bytes.length - 1 - i : i]);
    return value;
  }

  /** Commonware's varint (LEB128) of a u64. */
  function varint(value) {
    const out = [];
    let rest = value;
    do {
      const low = Number(rest & 0x7fn);
      rest >>= 7n;
      out.push(rest > 0n ? low | 0x80 : low);
    } while (rest > 0n);
    return Uint8Array.from(out);
  }

  // ---------------------------------------------------------------------------------------
  // BLAKE3, from its specification: 1 KiB chunks of 64-byte blocks, each chunk's chaining value
  // depends on its index (the counter), and a left-complete binary tree of parent nodes above.

  const IV = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const MESSAGE_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const CHUNK_START = 1;
  const CHUNK_END = 2;
  const PARENT = 4;
  const ROOT = 8;
  const KEYED_HASH = 16;
  const DERIVE_KEY_CONTEXT = 32;
  const DERIVE_KEY_MATERIAL = 64;
  const BLOCK_LEN = 64;
  const CHUNK_LEN = 1024;

  const rotateRight = (word, bits) => (word >>> bits) | (word << (32 - bits));

  /** The quarter-round: mixes two message words into four state words. */
  function mix(state, a, b, c, d, x, y) {
    state[a] = state[a] + state[b] + x;
    state[d] = rotateRight(state[d] ^ state[a], 16);
    state[c] = state[c] + state[d];
    state[b] = rotateRight(state[b] ^ state[c], 12);
    state[a] = state[a] + state[b] + y;
    state[d] = rotateRight(state[d] ^ state[a], 8);
    state[c] = state[c] + state[d];
    state[b] = rotateRight(state[b] ^ state[c], 7);
  }

  /** The compression function: seven rounds over a 16-word block; answers all 16 output words. */
  function compress(chainingValue, blockWords, counter, blockLen, flags) {
    const state = new Uint32Array(16);
    state.set(chainingValue, 0);
    state.set(IV.subarray(0, 4), 8);
    state[12] = Number(counter & 0xffffffffn);
    state[13] = Number((counter >> 32n) & 0xffffffffn);
    state[14] = blockLen;
    state[15] = flags;
    let m = Uint32Array.from(blockWords);
    for (let round = 0; round < 7; round += 1) {
      mix(state, 0, 4, 8, 12, m[0], m[1]);
      mix(state, 1, 5, 9, 13, m[2], m[3]);
      mix(state, 2, 6, 10, 14, m[4], m[5]);
      mix(state, 3, 7, 11, 15, m[6], m[7]);
      mix(state, 0, 5, 10, 15, m[8], m[9]);
      mix(state, 1, 6, 11, 12, m[10], m[11]);
      mix(state, 2, 7, 8, 13, m[12], m[13]);
      mix(state, 3, 4, 9, 14, m[14], m[15]);
      if (round < 6) m = Uint32Array.from(MESSAGE_PERMUTATION, (index) => m[index]);
    }
    for (let i = 0; i < 8; i += 1) {
      state[i] ^= state[i + 8];
      state[i + 8] ^= chainingValue[i];
    }
    return state;
  }

  /** Little-endian words of `bytes` (length a multiple of 4). */
  function wordsOf(bytes) {
    const words = new Uint32Array(bytes.length / 4);
    for (let i = 0; i < words.length; i += 1) {
      words[i] = bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24);
    }
    return words;
  }

  function bytesOf(words) {
    const bytes = new Uint8Array(words.length * 4);
    for (let i = 0; i < words.length; i += 1) {
      bytes[4 * i] = words[i] & 0xff;
      bytes[4 * i + 1] = (words[i] >>> 8) & 0xff;
      bytes[4 * i + 2] = (words[i] >>> 16) & 0xff;
      bytes[4 * i + 3] = (words[i] >>> 24) & 0xff;
    }
    return bytes;
  }

  /**
   * What is left to compress of a node once its input is known: the last block of a chunk, or
   * a parent's block. As a chaining value it is compressed as is; as the root, with ROOT set
   * and the output counter 0.
   */
  function chunkNode(keyWords, chunk, counter, flags) {
    let chainingValue = keyWords;
    const blocks = Math.max(1, Math.ceil(chunk.length / BLOCK_LEN));
    for (let index = 0; index < blocks; index += 1) {
      const block = new Uint8Array(BLOCK_LEN);
      const part = chunk.subarray(index * BLOCK_LEN, (index + 1) * BLOCK_LEN);
      block.set(part);
      const blockFlags = flags | (index === 0 ? CHUNK_START : 0);
      if (index === blocks - 1) return { chainingValue, words: wordsOf(block), counter, blockLen: part.length, flags: blockFlags | CHUNK_END };
      chainingValue = compress(chainingValue, wordsOf(block), counter, BLOCK_LEN, blockFlags).subarray(0, 8);
    }
    throw new Error("unreachable: a chunk has a last block");
  }

  function parentNode(keyWords, left, right, flags) {
    const words = new Uint32Array(16);
    words.set(left, 0);
    words.set(right, 8);
    return { chainingValue: keyWords, words, counter: 0n, blockLen: BLOCK_LEN, flags: flags | PARENT };
  }

  const nodeChainingValue = (node) => compress(node.chainingValue, node.words, node.counter, node.blockLen, node.flags).subarray(0, 8);
  const nodeRoot = (node) => bytesOf(compress(node.chainingValue, node.words, 0n, node.blockLen, node.flags | ROOT).subarray(0, 8));

  /** The length of the left subtree of an input of `length` bytes (more than one chunk): the
   * largest power of two of chunks that leaves at least one byte to the right. BigInt. */
  function leftSubtreeLength(length) {
    const fullChunks = (length - 1n) / BigInt(CHUNK_LEN);
    let power = 1n;
    while (power * 2n <= fullChunks) power *= 2n;
    return power * BigInt(CHUNK_LEN);
  }

  /** The chaining value of `bytes` as the subtree at byte `offset` (a BigInt) of an input. */
  function subtreeChainingValue(keyWords, bytes, offset, flags) {
    if (bytes.length <= CHUNK_LEN) return nodeChainingValue(chunkNode(keyWords, bytes, offset / BigInt(CHUNK_LEN), flags));
    const left = Number(leftSubtreeLength(BigInt(bytes.length)));
    const leftValue = subtreeChainingValue(keyWords, bytes.subarray(0, left), offset, flags);
    const rightValue = subtreeChainingValue(keyWords, bytes.subarray(left), offset + BigInt(left), flags);
    return nodeChainingValue(parentNode(keyWords, leftValue, rightValue, flags));
  }

  function rootHash(keyWords, bytes, flags) {
    if (bytes.length <= CHUNK_LEN) return nodeRoot(chunkNode(keyWords, bytes, 0n, flags));
    const left = Number(leftSubtreeLength(BigInt(bytes.length)));
    const leftValue = subtreeChainingValue(keyWords, bytes.subarray(0, left), 0n, flags);
    const rightValue = subtreeChainingValue(keyWords, bytes.subarray(left), BigInt(left), flags);
    return nodeRoot(parentNode(keyWords, leftValue, rightValue, flags));
  }

  function keyWordsOf(key) {
    if (key.length !== 32) throw new Error("a BLAKE3 key is 32 bytes");
    return wordsOf(key);
  }

  const blake3 = {
    hash: (bytes) => rootHash(IV, bytes, 0),
    keyedHash: (key, bytes) => rootHash(keyWordsOf(key), bytes, KEYED_HASH),
    deriveKey: (context, material) => {
      const contextKey = rootHash(IV, encoder.encode(context), DERIVE_KEY_CONTEXT);
      return rootHash(wordsOf(contextKey), material, DERIVE_KEY_MATERIAL);
    },
    /** A keyed hash's chaining value of the subtree `bytes` at byte `offset` (BigInt) of its input. */
    chainingValue: (key, bytes, offset) => bytesOf(subtreeChainingValue(keyWordsOf(key), bytes, offset, KEYED_HASH)),
    mergeNonRoot: (key, left, right) => bytesOf(nodeChainingValue(parentNode(keyWordsOf(key), wordsOf(left), wordsOf(right), KEYED_HASH))),
    mergeRoot: (key, left, right) => nodeRoot(parentNode(keyWordsOf(key), wordsOf(left), wordsOf(right), KEYED_HASH)),
  };

  // ---------------------------------------------------------------------------------------
  // The ledger's commitments (crates/ledger/src): merkle.rs, chunk_proof.rs, account_table.rs,
  // transfer_log.rs, commitment.rs.

  const key = (text) => encoder.encode(text);
  const NODE_KEY = key("tally.ledger.v1.merkle.node.....");
  const ACCOUNT_IDENTITY_KEY = key("tally.ledger.v1.account-identity");
  const SEGMENT_KEY = key("tally.ledger.v1.account-segment.");
  const TRANSFER_LOG_KEY = key("tally.ledger.v1.transfer-log....");
  const PENDING_KEY = key("tally.ledger.v1.pending-status..");
  const DIGEST_KEY = key("tally.ledger.v1.state-digest....");

  const merkleNode = (left, right) => blake3.mergeNonRoot(NODE_KEY, left, right);

  /** RFC 9162's audit path check (merkle.rs `verify_proof`); sizes and indexes are BigInt. */
  function merkleIncludes(root, size, index, leaf, path) {
    if (index >= size) return false;
    let fn = index;
    let sn = size - 1n;
    let hash = leaf;
    for (const sibling of path) {
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        hash = merkleNode(sibling, hash);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        hash = merkleNode(hash, sibling);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equal(hash, root);
  }

  /** The root that a chunk at `chunkStart` of an input of `length` bytes and its siblings give
   * (chunk_proof.rs `root`), or null when they cannot be a proof for that position. */
  function chunkProofRoot(hashKey, length, chunkStart, chunk, siblings) {
    const chunkLen = BigInt(CHUNK_LEN);
    if (chunkStart >= length || chunkStart % chunkLen !== 0n || siblings.length > 64) return null;
    const sides = []; // true: the chunk is in the left subtree
    let start = 0n;
    let remaining = length;
    while (remaining > chunkLen) {
      const left = leftSubtreeLength(remaining);
      const inLeft = chunkStart < start + left;
      sides.push(inLeft);
      if (inLeft) {
        remaining = left;
      } else {
        start += left;
        remaining -= left;
      }
    }
    if (start !== chunkStart || BigInt(chunk.length) !== remaining || sides.length !== siblings.length) return null;
    if (sides.length === 0) return blake3.keyedHash(hashKey, chunk);
    let value = blake3.chainingValue(hashKey, chunk, chunkStart);
    sides.reverse();
    for (let depth = 0; depth < siblings.length; depth += 1) {
      const [left, right] = sides[depth] ? [value, siblings[depth]] : [siblings[depth], value];
      if (depth + 1 === siblings.length) return blake3.mergeRoot(hashKey, left, right);
      value = blake3.mergeNonRoot(hashKey, left, right);
    }
    throw new Error("unreachable: the loop returns at the root");
  }

  /** An account's leaf: its balances hashed with its identity hash (every other field) as key. */
  function accountLeaf(bytes) {
    const identity = blake3.keyedHash(ACCOUNT_IDENTITY_KEY, concat(bytes.subarray(0, 16), bytes.subarray(80, 128)));
    return blake3.keyedHash(identity, bytes.subarray(16, 80));
  }

  /** account_table.rs `verify_account`. */
  function accountIncluded(root, count, index, bytes, proof) {
    if (index >= count) return false;
    const first = (index / SEGMENT_ACCOUNTS) * SEGMENT_ACCOUNTS;
    const remainder = count - first;
    const segmentLength = (remainder < SEGMENT_ACCOUNTS ? remainder : SEGMENT_ACCOUNTS) * LEAF_LEN;
    const offset = (index - first) * LEAF_LEN;
    const chunkStart = (offset / BigInt(CHUNK_LEN)) * BigInt(CHUNK_LEN);
    const position = Number((offset - chunkStart) / LEAF_LEN);
    if (position >= proof.chunk.length || !equal(proof.chunk[position], accountLeaf(bytes))) return false;
    const segmentHash = chunkProofRoot(SEGMENT_KEY, segmentLength, chunkStart, concat(...proof.chunk), proof.siblings);
    if (segmentHash === null) return false;
    const segments = (count + SEGMENT_ACCOUNTS - 1n) / SEGMENT_ACCOUNTS;
    return merkleIncludes(root, segments, index / SEGMENT_ACCOUNTS, segmentHash, proof.path);
  }

  /** commitment.rs `TransferProof::verify` with the parts of the receipt. */
  function transferIncluded(parts, transfer) {
    const total = parts.transferCount * BigInt(OBJECT_SIZE);
    const target = transfer.index * BigInt(OBJECT_SIZE);
    if (total > U64_MAX || target > U64_MAX || transfer.index >= parts.transferCount) return false;
    const chunkStart = (target / BigInt(CHUNK_LEN)) * BigInt(CHUNK_LEN);
    const root = chunkProofRoot(TRANSFER_LOG_KEY, total, chunkStart, transfer.chunk, transfer.siblings);
    if (root === null || !equal(root, parts.transfersRoot)) return false;
    const flags = transfer.bytes[118] | (transfer.bytes[119] << 8); // after 118 bytes of other fields
    const isPending = (flags & TRANSFER_PENDING_FLAG) !== 0;
    if (transfer.pending === null) return !isPending;
    if (!isPending) return false;
    const leaf = blake3.keyedHash(PENDING_KEY, concat(transfer.bytes.subarray(0, 16), Uint8Array.of(transfer.pending.status)));
    return merkleIncludes(parts.pendingRoot, parts.pendingCount, transfer.pending.slot, leaf, transfer.pending.path);
  }

  /** DigestParts::digest: roots with little-endian counts, and the last timestamp. */
  function partsDigest(parts) {
    return blake3.keyedHash(
      DIGEST_KEY,
      concat(
        parts.accountsRoot, uintBytes(parts.accountCount, 8, true),
        parts.transfersRoot, uintBytes(parts.transferCount, 8, true),
        parts.pendingRoot, uintBytes(parts.pendingCount, 8, true),
        parts.balancesRoot, uintBytes(parts.balanceCount, 8, true),
        parts.failedIdsRoot, uintBytes(parts.failedIdCount, 8, true),
        uintBytes(parts.timestampLast, 8, true),
      ),
    );
  }

  /** execution.rs `state_digest`: what a header's `state_digest` commits to. */
  const chainStateDigest = (ledgerDigest, includedDigest) => blake3.deriveKey(STATE_DIGEST_CONTEXT, concat(ledgerDigest, includedDigest));

  // ---------------------------------------------------------------------------------------
  // Decoding a state receipt (state_receipt.rs and certified.rs `decode`)

  class Reader {
    constructor(bytes, malformed) {
      this.bytes = bytes;
      this.at = 0;
      this.malformed = malformed;
    }
    get remaining() {
      return this.bytes.length - this.at;
    }
    take(count) {
      if (count > this.remaining) throw new Unverified(this.malformed(this.at === 0 && this.bytes.length === 0 ? "it is empty" : "it ends early"));
      const part = this.bytes.subarray(this.at, this.at + count);
      this.at += count;
      return part;
    }
    u8() {
      return this.take(1)[0];
    }
    u16() {
      return Number(uintFrom(this.take(2), false));
    }
    u32() {
      return Number(uintFrom(this.take(4), false));
    }
    u64() {
      return uintFrom(this.take(8), false);
    }
    /** A u64 varint, canonical as Commonware's decoder requires. */
    varint() {
      let value = 0n;
      for (let index = 0; index < 10; index += 1) {
        const byte = this.u8();
        value |= BigInt(byte & 0x7f) << BigInt(7 * index);
        if (byte < 0x80) {
          if (index > 0 && byte === 0) throw new Unverified(this.malformed("a varint is not in its shortest form"));
          if (value > U64_MAX) throw new Unverified(this.malformed("a varint overflows 64 bits"));
          return value;
        }
      }
      throw new Unverified(this.malformed("a varint is too long"));
    }
    path() {
      const count = this.u8();
      if (count > PATH_MAX) throw new Unverified(this.malformed("a path of " + count + " hashes"));
      return Array.from({ length: count }, () => this.take(32));
    }
    count() {
      const count = this.u16();
      if (count > OBJECTS_MAX) throw new Unverified(this.malformed(count + " objects"));
      return count;
    }
  }

  const receiptMalformed = (why) => "malformed state receipt: " + why;
  const certificateMalformed = (why) => "the header is not proven final: malformed certified header: " + why;
  const notFinal = (why) => "the header is not proven final: " + why;

  function readHeader(reader) {
    const raw = reader.take(HEADER_SIZE);
    const r = new Reader(raw, reader.malformed);
    const header = {
      raw,
      version: r.u16(),
      epoch: r.u64(),
      view: r.u64(),
      leader: r.take(32),
      parentView: r.u64(),
      parent: r.take(32),
      height: r.u64(),
      timestampNs: r.u64(),
      requestCount: r.u32(),
      requestsRoot: r.take(32),
      stateDigest: r.take(32),
      resultsRoot: r.take(32),
    };
    if (header.version !== PROTOCOL_VERSION) throw new Unverified(reader.malformed("a header of protocol version " + header.version));
    if (header.requestCount > BLOCK_REQUESTS_MAX) throw new Unverified(reader.malformed("a header of " + header.requestCount + " requests"));
    return header;
  }

  function decodeCertified(bytes, validatorCount) {
    const reader = new Reader(bytes, certificateMalformed);
    const header = readHeader(reader);
    if (reader.remaining < 2) throw new Unverified(certificateMalformed("no descendant count"));
    const count = reader.u16();
    if (count > CERTIFIED_DESCENDANTS_MAX || reader.remaining < count * HEADER_SIZE) throw new Unverified(certificateMalformed(count + " descendants"));
    const descendants = Array.from({ length: count }, () => readHeader(reader));
    const epoch = reader.varint();
    const view = reader.varint();
    const parentView = reader.varint();
    const payload = reader.take(32);
    const bitCount = reader.u64();
    if (bitCount > BigInt(validatorCount)) throw new Unverified(certificateMalformed("a signer bitmap of " + bitCount + " bits for " + validatorCount + " validators"));
    const bits = Number(bitCount);
    const bitmap = reader.take(Math.ceil(bits / 8));
    const signers = [];
    for (let index = 0; index < bitmap.length * 8; index += 1) {
      if ((bitmap[index >> 3] >> (index & 7)) & 1) {
        if (index >= bits) throw new Unverified(certificateMalformed("the signer bitmap has bits set past its length"));
        signers.push(index);
      }
    }
    if (signers.length === 0) throw new Unverified(certificateMalformed("the certificate has no signers"));
    const signatureCount = reader.varint();
    if (signatureCount > BigInt(validatorCount)) throw new Unverified(certificateMalformed(signatureCount + " signatures"));
    if (Number(signatureCount) !== signers.length) throw new Unverified(certificateMalformed("the signers and signatures counts differ"));
    const signatures = signers.map(() => reader.take(64));
    if (reader.remaining !== 0) throw new Unverified(certificateMalformed(reader.remaining + " bytes follow the certificate"));
    return { header, descendants, finalization: { epoch, view, parentView, payload, bits, signers, signatures } };
  }

  /** StateReceipt::decode: every count bounded before anything is read. */
  function decodeReceipt(bytes, validatorCount) {
    const reader = new Reader(bytes, receiptMalformed);
    const pair = () => [reader.take(32), reader.u64()];
    const [accountsRoot, accountCount] = pair();
    const [transfersRoot, transferCount] = pair();
    const [pendingRoot, pendingCount] = pair();
    const [balancesRoot, balanceCount] = pair();
    const [failedIdsRoot, failedIdCount] = pair();
    const parts = { accountsRoot, accountCount, transfersRoot, transferCount, pendingRoot, pendingCount, balancesRoot, balanceCount, failedIdsRoot, failedIdCount, timestampLast: reader.u64() };
    const includedDigest = reader.take(32);
    const accounts = Array.from({ length: reader.count() }, () => ({
      bytes: reader.take(OBJECT_SIZE),
      index: reader.u64(),
      proof: { chunk: reader.path(), siblings: reader.path(), path: reader.path() },
    }));
    const transfers = Array.from({ length: reader.count() }, () => {
      const index = reader.u64();
      const chunkLen = reader.u16();
      if (chunkLen === 0 || chunkLen > CHUNK_LEN || chunkLen % OBJECT_SIZE !== 0) throw new Unverified(receiptMalformed("a transfer log chunk of " + chunkLen + " bytes"));
      const chunk = reader.take(chunkLen);
      const siblings = reader.path();
      const code = reader.u8();
      let pending = null;
      if (code !== 0) {
        if (!PENDING_STATUSES[code]) throw new Unverified(receiptMalformed("pending status " + code));
        pending = { status: code, slot: reader.u64(), path: reader.path() };
      }
      const target = index * BigInt(OBJECT_SIZE);
      const offset = Number(target % BigInt(CHUNK_LEN));
      if (target > U64_MAX || offset + OBJECT_SIZE > chunk.length) throw new Unverified(receiptMalformed("transfer " + index + " is not in its chunk"));
      return { index, chunk, siblings, pending, bytes: chunk.subarray(offset, offset + OBJECT_SIZE) };
    });
    // Balance history entries: the dashboard never asks for them, and does not check them.
    const entries = reader.count();
    if (entries !== 0) throw new Unverified("the receipt holds " + entries + " balance history entries, which this page does not check");
    const certified = decodeCertified(bytes.subarray(reader.at), validatorCount);
    return { parts, includedDigest, accounts, transfers, certified };
  }

  // ---------------------------------------------------------------------------------------
  // Checking it (StateReceipt::verify and CertifiedHeader::verify)

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function webCrypto() {
    if (!globalThis.crypto || !crypto.subtle) {
      throw new Unverified("this browser offers no WebCrypto here (pages served over plain http from an address other than localhost are not a secure context): open the dashboard over https or through localhost");
    }
    return crypto.subtle;
  }

  async function verifyCertified(certified, genesis) {
    const subtle = webCrypto();
    const digests = new Map();
    const digestOf = async (header) => {
      if (!digests.has(header)) digests.set(header, await sha256(header.raw));
      return digests.get(header);
    };
    let below = certified.header;
    for (const header of certified.descendants) {
      const follows =
        equal(header.parent, await digestOf(below)) &&
        below.height < U64_MAX &&
        header.height === below.height + 1n &&
        header.epoch === below.epoch &&
        header.parentView === below.view &&
        header.view > below.view;
      if (!follows) throw new Unverified(notFinal("the header at height " + header.height + " does not follow the header below it (parent, height, view, epoch)"));
      below = header;
    }
    const top = below;
    const finalization = certified.finalization;
    const topDigest = await digestOf(top);
    if (!equal(finalization.payload, topDigest)) {
      throw new Unverified(notFinal("the certificate finalizes block " + toHex(finalization.payload) + ", not the top of the chain (" + toHex(topDigest) + ")"));
    }
    if (finalization.epoch !== top.epoch || finalization.view !== top.view || finalization.parentView !== top.parentView) {
      throw new Unverified(notFinal("the certificate's round (epoch " + finalization.epoch + ", view " + finalization.view + ") is not the certified header's"));
    }
    const count = genesis.validators.length;
    const quorum = count - Math.floor((count - 1) / 3);
    const badSignatures = (why) => new Unverified(notFinal("the certificate's signatures are not a quorum of this chain's validators (" + why + ")"));
    if (finalization.bits !== count) throw badSignatures("a bitmap of " + finalization.bits + " bits for " + count + " validators");
    if (finalization.signers.length < quorum) throw badSignatures(finalization.signers.length + " signatures, a quorum is " + quorum);
    const namespace = concat(encoder.encode(CONSENSUS_NAMESPACE), uintBytes(genesis.chainId, 8, false), encoder.encode(FINALIZE_SUFFIX));
    const message = concat(varint(BigInt(namespace.length)), namespace, varint(finalization.epoch), varint(finalization.view), varint(finalization.parentView), finalization.payload);
    for (let i = 0; i < finalization.signers.length; i += 1) {
      const validator = genesis.validators[finalization.signers[i]];
      let valid = false;
      try {
        valid = await subtle.verify({ name: "Ed25519" }, await verifyingKey(genesis, validator), finalization.signatures[i], message);
      } catch (error) {
        if (error && error.name === "NotSupportedError") throw new Unverified("this browser's WebCrypto has no Ed25519: use a current browser");
        valid = false;
      }
      if (!valid) throw badSignatures("the signature of validator " + toHex(validator).slice(0, 8) + "… does not verify");
    }
    return top;
  }

  async function verifyingKey(genesis, validator) {
    const hex = toHex(validator);
    if (!genesis.keys.has(hex)) genesis.keys.set(hex, crypto.subtle.importKey("raw", validator, { name: "Ed25519" }, false, ["verify"]));
    return genesis.keys.get(hex);
  }

  /**
   * Decodes and checks a state receipt against the genesis, as StateReceipt::verify does.
   * Answers the proven height, the certificate's signers and the proven objects' fields; throws
   * Unverified with the reason otherwise.
   */
  async function verifyReceipt(bytes, genesis) {
    const receipt = decodeReceipt(bytes, genesis.validators.length);
    const header = receipt.certified.header;
    const top = await verifyCertified(receipt.certified, genesis);
    if (header.height === 0n || !equal(chainStateDigest(partsDigest(receipt.parts), receipt.includedDigest), header.stateDigest)) {
      throw new Unverified("the state's digest is not the one the certified header at height " + header.height + " commits to");
    }
    for (const account of receipt.accounts) {
      if (!accountIncluded(receipt.parts.accountsRoot, receipt.parts.accountCount, account.index, account.bytes, account.proof)) {
        throw new Unverified("account " + uintFrom(account.bytes.subarray(0, 16), true) + " is not in the state the header commits to");
      }
    }
    for (const transfer of receipt.transfers) {
      if (!transferIncluded(receipt.parts, transfer)) {
        throw new Unverified("transfer " + uintFrom(transfer.bytes.subarray(0, 16), true) + " is not in the state the header commits to");
      }
    }
    return {
      height: header.height - 1n,
      certifiedHeight: top.height,
      timestampNs: header.timestampNs,
      signers: receipt.certified.finalization.signers.map((index) => toHex(genesis.validators[index])),
      validators: genesis.validators.length,
      accounts: receipt.accounts.map((account) => accountFields(account.bytes)),
      transfers: receipt.transfers.map((transfer) => transferFields(transfer.bytes)),
    };
  }

  // ---------------------------------------------------------------------------------------
  // The proven objects as the API writes them (crates/api/src/json.rs), to compare field by field

  function fieldReader(bytes) {
    let at = 0;
    const next = (size) => uintFrom(bytes.subarray(at, (at += size)), true);
    return { decimal: (size) => next(size).toString(), number: (size) => Number(next(size)) };
  }

  function flagNames(bits, names) {
    const shown = names.filter((_, bit) => bits & (1 << bit));
    const reserved = bits & ~((1 << names.length) - 1);
    if (reserved) shown.push("reserved bits " + reserved);
    return shown;
  }

  function accountFields(bytes) {
    const r = fieldReader(bytes);
    return {
      id: r.decimal(16), debits_pending: r.decimal(16), debits_posted: r.decimal(16), credits_pending: r.decimal(16), credits_posted: r.decimal(16),
      user_data_128: r.decimal(16), user_data_64: r.decimal(8), user_data_32: r.number(4), reserved: r.number(4), ledger: r.number(4), code: r.number(2),
      flags: flagNames(r.number(2), ACCOUNT_FLAGS), timestamp: r.decimal(8),
    };
  }

  function transferFields(bytes) {
    const r = fieldReader(bytes);
    return {
      id: r.decimal(16), debit_account_id: r.decimal(16), credit_account_id: r.decimal(16), amount: r.decimal(16), pending_id: r.decimal(16),
      user_data_128: r.decimal(16), user_data_64: r.decimal(8), user_data_32: r.number(4), timeout: r.number(4), ledger: r.number(4), code: r.number(2),
      flags: flagNames(r.number(2), TRANSFER_FLAGS), timestamp: r.decimal(8),
    };
  }

  /** The first field of `shown` that is not `proven`'s, or null when they are the same object. */
  function differingField(shown, proven) {
    if (shown === null || typeof shown !== "object" || Array.isArray(shown)) return "the whole object";
    const shownKeys = Object.keys(shown).filter((name) => name !== "proof").sort();
    const provenKeys = Object.keys(proven).sort();
    for (const name of new Set([...shownKeys, ...provenKeys])) {
      if (!(name in proven) || !(name in shown)) return name;
      const a = shown[name];
      const b = proven[name];
      const same = Array.isArray(b) ? Array.isArray(a) && a.length === b.length && a.every((item, i) => item === b[i]) : a === b;
      if (!same) return name;
    }
    return null;
  }

  // ---------------------------------------------------------------------------------------
  // The genesis: the reader's, kept in this browser

  /** JSON.parse, but integers stay exact (BigInt): a genesis's timestamp is above 2^53. */
  function parseExactJson(text) {
    let at = 0;
    const fail = (why) => {
      throw new Error("not JSON: " + why + " at character " + at);
    };
    const skipSpace = () => {
      while (at < text.length && " \t\r\n".includes(text[at])) at += 1;
    };
    const value = () => {
      skipSpace();
      const rest = text.slice(at);
      if (text[at] === "{") {
        at += 1;
        const object = {};
        skipSpace();
        if (text[at] === "}") {
          at += 1;
          return object;
        }
        for (;;) {
          skipSpace();
          if (text[at] !== '"') fail("a name expected");
          const name = value();
          if (Object.prototype.hasOwnProperty.call(object, name)) fail("the name " + JSON.stringify(name) + " twice");
          skipSpace();
          if (text[at] !== ":") fail("':' expected");
          at += 1;
          object[name] = value();
          skipSpace();
          if (text[at] === ",") at += 1;
          else if (text[at] === "}") {
            at += 1;
            return object;
          } else fail("',' or '}' expected");
        }
      }
      if (text[at] === "[") {
        at += 1;
        const array = [];
        skipSpace();
        if (text[at] === "]") {
          at += 1;
          return array;
        }
        for (;;) {
          array.push(value());
          skipSpace();
          if (text[at] === ",") at += 1;
          else if (text[at] === "]") {
            at += 1;
            return array;
          } else fail("',' or ']' expected");
        }
      }
      const string = /^"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/.exec(rest);
      if (string) {
        at += string[0].length;
        return JSON.parse(string[0]);
      }
      const number = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(rest);
      if (number) {
        at += number[0].length;
        return number[1] === undefined && number[2] === undefined ? BigInt(number[0]) : Number(number[0]);
      }
      for (const [word, meaning] of [["true", true], ["false", false], ["null", null]]) {
        if (rest.startsWith(word)) {
          at += word.length;
          return meaning;
        }
      }
      return fail("a value expected");
    };
    const result = value();
    skipSpace();
    if (at !== text.length) fail("text after the value");
    return result;
  }

  function exactFields(object, names, where) {
    if (object === null || typeof object !== "object" || Array.isArray(object)) throw new Error(where + " is not an object");
    for (const name of Object.keys(object)) if (!names.includes(name)) throw new Error(where + ": unknown field " + JSON.stringify(name));
    for (const name of names) if (!(name in object)) throw new Error(where + ": no " + name);
  }

  function u64Field(value, where) {
    if (typeof value !== "bigint" || value < 0n || value > U64_MAX) throw new Error(where + " is not a whole number from 0 to 2^64 - 1");
    return value;
  }

  function keyField(value, where) {
    if (typeof value !== "string" || !/^[0-9a-fA-F]{64}$/.test(value)) throw new Error(where + " is not a 32-byte key in hex");
    return value.toLowerCase();
  }

  function compareBytes(a, b) {
    for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  }

  /**
   * A genesis file's text (crates/node/src/genesis_file.rs) checked as the validator checks it,
   * with its digest: SHA-256 of the chain id, the time, and the sorted validator and client
   * keys (`Genesis::commitment`, the parent of the genesis block). Addresses are not in it.
   */
  async function parseGenesis(text) {
    const raw = parseExactJson(text);
    // A chain re-founded from a backup of another also names the state it starts from.
    const founded = raw !== null && typeof raw === "object" && "founding" in raw;
    exactFields(raw, ["chain_id", "timestamp_ns", "validators", "clients"].concat(founded ? ["founding"] : []), "the genesis");
    const chainId = u64Field(raw.chain_id, "chain_id");
    const timestampNs = u64Field(raw.timestamp_ns, "timestamp_ns");
    if (!Array.isArray(raw.validators) || raw.validators.length === 0) throw new Error("validators: the genesis lists no validators");
    if (!Array.isArray(raw.clients)) throw new Error("clients is not a list");
    const validatorHex = raw.validators.map((entry, index) => {
      exactFields(entry, ["key", "p2p", "api"], "validators[" + index + "]");
      return keyField(entry.key, "validators[" + index + "].key");
    });
    const clientHex = raw.clients.map((client, index) => keyField(client, "clients[" + index + "]"));
    for (const [list, name] of [[validatorHex, "validators"], [clientHex, "clients"]]) {
      const twice = list.find((item, index) => list.indexOf(item) !== index);
      if (twice) throw new Error(name + ": " + twice + " is listed twice");
    }
    const validators = validatorHex.map((hex) => fromHex(hex, "a key")).sort(compareBytes);
    const clients = clientHex.map((hex) => fromHex(hex, "a key")).sort(compareBytes);
    let founding = new Uint8Array(0);
    if (founded) {
      exactFields(raw.founding, ["chain_id", "height", "block", "state_digest"], "founding");
      const digest = (value, name) => {
        if (typeof value !== "string" || value.length !== 64) throw new Error("founding." + name + " is not 64 hex digits");
        return fromHex(value, "founding." + name);
      };
      founding = concat(
        new Uint8Array([1]),
        uintBytes(u64Field(raw.founding.chain_id, "founding.chain_id"), 8, false),
        uintBytes(u64Field(raw.founding.height, "founding.height"), 8, false),
        digest(raw.founding.block, "block"),
        digest(raw.founding.state_digest, "state_digest"),
      );
    }
    const commitment = concat(
      uintBytes(chainId, 8, false), uintBytes(timestampNs, 8, false),
      uintBytes(BigInt(validators.length), 8, false), ...validators,
      uintBytes(BigInt(clients.length), 8, false), ...clients,
      founding,
    );
    webCrypto();
    const digest = toHex(await sha256(commitment));
    return { chainId, timestampNs, validators, clients, digest, keys: new Map() };
  }

  const state = {
    genesis: null, // parsed, with { source, name, savedAtMs, text }
    genesisError: null,
    marks: new Set(), // nodes showing a verdict, re-checked when the genesis changes
    panel: null,
  };
  // Settled once the genesis kept in this browser is read back: no answer is judged before.
  let restored;
  const ready = new Promise((resolve) => {
    restored = resolve;
  });

  async function adoptGenesis(text, source, name) {
    const genesis = await parseGenesis(text);
    Object.assign(genesis, { source, name: name || "", savedAtMs: Date.now(), text });
    state.genesis = genesis;
    state.genesisError = null;
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify({ text, source, name: genesis.name, savedAtMs: genesis.savedAtMs }));
    } catch (error) {
      // Storage may be off (private windows): the genesis then lasts as long as the page.
    }
    changed();
    return genesis;
  }

  function forgetGenesis() {
    state.genesis = null;
    state.genesisError = null;
    try {
      localStorage.removeItem(STORAGE_KEY);
    } catch (error) {
      // As above.
    }
    changed();
  }

  async function restoreGenesis() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    } catch (error) {
      saved = null;
    }
    if (!saved || typeof saved.text !== "string") return;
    try {
      const genesis = await parseGenesis(saved.text);
      Object.assign(genesis, { source: saved.source, name: saved.name || "", savedAtMs: saved.savedAtMs, text: saved.text });
      state.genesis = genesis;
    } catch (error) {
      state.genesisError = "The saved genesis is not usable: " + error.message;
    }
  }

  /** Fetches the validator's genesis; with `expectedDigest`, keeps it only if its digest is that. */
  async function fetchGenesis(expectedDigest) {
    const response = await fetch("/v1/genesis", { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("the validator answered HTTP " + response.status);
    const text = await response.text();
    const genesis = await parseGenesis(text);
    if (expectedDigest && genesis.digest !== expectedDigest) {
      throw new Error("the validator's genesis has digest " + genesis.digest + ", not the " + expectedDigest + " you gave: it is not your chain's genesis");
    }
    return adoptGenesis(text, expectedDigest ? "validator-checked" : "validator", "");
  }

  const SOURCES = {
    file: "from your file",
    pasted: "pasted by you",
    "validator-checked": "fetched from this validator, its digest the one you gave",
    validator: "fetched from this validator and NOT checked: compare its digest with one you trust",
  };

  // ---------------------------------------------------------------------------------------
  // Verdicts and marks

  const shortDigest = (hex) => hex.slice(0, 12);

  function clockTime(ns) {
    const date = new Date(Number(ns / 1000000n));
    const pad = (n) => String(n).padStart(2, "0");
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  /** Checks one answer: `kind` "account" (with the id asked for) or "transfers". */
  async function check(kind, answer, id) {
    await ready;
    const genesis = state.genesis;
    if (!genesis) throw new Unverified("no genesis given (load it under Verification)");
    if (answer === null || typeof answer !== "object") throw new Unverified("the answer is not an object");
    const proof = answer.proof;
    if (!proof || typeof proof.receipt !== "string") throw new Unverified("the answer carries no proof");
    // The answer's own `proof.height` is not relied on: the receipt proves the state after block
    // `proven.height` (which a validator whose last block changed nothing calls its next height).
    const proven = await verifyReceipt(fromHex(proof.receipt, "the receipt"), genesis);
    let listed;
    if (kind === "account") {
      const account = proven.accounts.find((item) => item.id === id);
      if (!account) throw new Unverified("the receipt does not prove account " + id);
      const field = differingField(answer, account);
      if (field !== null) throw new Unverified("the account shown differs from the proven one in " + field);
      listed = 1;
    } else {
      if (!Array.isArray(answer.transfers)) throw new Unverified("the answer lists no transfers");
      for (const shown of answer.transfers) {
        const transferId = shown && typeof shown.id === "string" ? shown.id : "?";
        const transfer = proven.transfers.find((item) => item.id === transferId);
        if (!transfer) throw new Unverified("the receipt does not prove transfer " + transferId);
        const field = differingField(shown, transfer);
        if (field !== null) throw new Unverified("transfer " + transferId + " shown differs from the proven one in " + field);
      }
      listed = answer.transfers.length;
    }
    return { verified: true, kind, listed, genesis, ...proven };
  }

  function verdictText(verdict) {
    if (!verdict.verified) return "NOT VERIFIED: " + verdict.reason;
    const what = verdict.kind === "account" ? "the account" : verdict.listed === 0 ? "nothing listed" : verdict.listed === 1 ? "the transfer listed" : "each of the " + verdict.listed + " transfers listed";
    return "Verified in this browser: " + what + " as of height " + verdict.height + " (final by " + clockTime(verdict.timestampNs) + "), signed by " + verdict.signers.length + " of " + verdict.validators + " validators, against genesis " + shortDigest(verdict.genesis.digest) + (verdict.genesis.source === "validator" ? " (served by this validator, unchecked)" : "");
  }

  function verdictTitle(verdict) {
    if (!verdict.verified) return "This answer's proof was checked in this browser and failed, or could not be checked. Do not rely on it.";
    const lines = [
      "Checked in this browser against the genesis " + verdict.genesis.digest + " (" + SOURCES[verdict.genesis.source] + ").",
      "The state after block " + verdict.height + " is committed to by the header at height " + (verdict.height + 1n) + ", finalized by the certificate at height " + verdict.certifiedHeight + ".",
      "Signers: " + verdict.signers.map((key) => key.slice(0, 8) + "…").join(", "),
    ];
    if (verdict.kind === "transfers") lines.push("A proof shows that each transfer listed is in the ledger, not that none is missing.");
    return lines.join("\n");
  }

  function render(node, verdict) {
    node.dataset.verdict = verdict.verified ? "verified" : "unverified";
    if (verdict.verified) {
      node.dataset.height = verdict.height.toString();
      node.dataset.signers = String(verdict.signers.length);
      node.dataset.genesis = verdict.genesis.source;
    } else {
      delete node.dataset.height;
      delete node.dataset.signers;
      delete node.dataset.genesis;
    }
    const icon = document.createElement("span");
    icon.className = "proof-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = verdict.verified ? "✓" : "✗";
    const text = document.createElement("span");
    text.className = "proof-text";
    text.textContent = verdictText(verdict);
    node.replaceChildren(icon, text);
    node.title = verdictTitle(verdict);
  }

  /**
   * Checks `answer` (a read made with ?proof=true) and shows the verdict in `node`: kind
   * "account" (with the account `id` asked for), "transfers", or null to clear the mark. The
   * newest call for a node wins, whatever order the checks end in.
   */
  function show(node, kind, answer, id) {
    if (!node) return;
    if (kind === null) {
      state.marks.delete(node);
      node.replaceChildren();
      node.dataset.verdict = "none";
      node.removeAttribute("title");
      return;
    }
    state.marks.add(node);
    const subject = { kind, answer, id };
    const signature = JSON.stringify([kind, id, answer]) + "|" + (state.genesis ? state.genesis.digest + state.genesis.source : "");
    if (node.verifySignature === signature && node.dataset.verdict !== "checking") return;
    node.verifySubject = subject;
    node.verifySignature = signature;
    const run = (node.verifyRun || 0) + 1;
    node.verifyRun = run;
    node.dataset.verdict = "checking";
    check(kind, answer, id).then(
      (verdict) => verdict,
      (error) => ({ verified: false, reason: error instanceof Unverified ? error.message : "the answer could not be checked (" + (error && error.message) + ")" }),
    ).then((verdict) => {
      if (node.verifyRun === run) render(node, verdict);
    });
  }

  /** Re-checks every mark and redraws the panel after the genesis changed. */
  function changed() {
    for (const node of state.marks) {
      const subject = node.verifySubject;
      if (subject) show(node, subject.kind, subject.answer, subject.id);
    }
    renderPanel();
  }

  // ---------------------------------------------------------------------------------------
  // The panel: which genesis answers are checked against, and how to give one

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function renderPanel() {
    const panel = state.panel;
    if (!panel) return;
    const genesis = state.genesis;
    const status = panel.querySelector("#genesis-status");
    status.dataset.genesis = genesis ? genesis.source : "none";
    if (genesis) {
      status.replaceChildren(
        el("span", { text: "Answers are checked in this browser against genesis " }),
        el("span", { className: "mono", id: "genesis-digest-shown", title: genesis.digest, text: shortDigest(genesis.digest) }),
        el("span", { text: " (chain " + genesis.chainId + ", " + genesis.validators.length + " validators), " + SOURCES[genesis.source] + (genesis.name ? " (" + genesis.name + ")" : "") + "." }),
      );
      panel.querySelector("#genesis-full-digest").textContent = "Digest: " + genesis.digest;
    } else {
      status.replaceChildren(el("span", { text: "No genesis given: nothing this page shows is verified. Give the genesis of the chain you trust, once; this browser keeps it." }));
      panel.querySelector("#genesis-full-digest").textContent = "";
    }
    panel.querySelector("#genesis-forget").hidden = !genesis;
    panel.querySelector("#genesis-error").textContent = state.genesisError || "";
  }

  function buildPanel(panel) {
    state.panel = panel;
    const errorNode = el("p", { className: "field-error", id: "genesis-error", "aria-live": "polite" });
    const attempt = (work) => {
      state.genesisError = null;
      errorNode.textContent = "";
      work().catch((error) => {
        state.genesisError = error.message;
        renderPanel();
      });
    };
    const fileInput = el("input", { type: "file", id: "genesis-file", accept: ".json,application/json" });
    fileInput.addEventListener("change", () => {
      const file = fileInput.files && fileInput.files[0];
      if (file) attempt(async () => adoptGenesis(await file.text(), "file", file.name));
      fileInput.value = "";
    });
    const pasted = el("textarea", { id: "genesis-text", rows: "4", spellcheck: "false", placeholder: '{"chain_id": 1, "timestamp_ns": …, "validators": […], "clients": […]}' });
    const pasteButton = el("button", { type: "button", id: "genesis-paste", text: "Use this genesis" });
    pasteButton.addEventListener("click", () => attempt(() => adoptGenesis(pasted.value, "pasted", "")));
    const digestInput = el("input", { type: "text", id: "genesis-digest", spellcheck: "false", autocomplete: "off", placeholder: "its digest, 64 hex (optional)", "aria-label": "the genesis digest you trust (optional)" });
    const fetchButton = el("button", { type: "button", id: "genesis-fetch", text: "Fetch from this validator" });
    fetchButton.addEventListener("click", () => {
      const digest = digestInput.value.trim().toLowerCase();
      if (digest && !/^[0-9a-f]{64}$/.test(digest)) {
        state.genesisError = "A genesis digest is 64 hex digits.";
        renderPanel();
        return;
      }
      attempt(() => fetchGenesis(digest));
    });
    const forget = el("button", { type: "button", id: "genesis-forget", className: "link", text: "Forget it" });
    forget.addEventListener("click", forgetGenesis);
    panel.replaceChildren(
      el("header", { className: "card-head" }, [el("h2", { id: "verify-title", text: "Verification" }), forget]),
      el("p", { id: "genesis-status", className: "genesis-status", "aria-live": "polite" }),
      el("p", { id: "genesis-full-digest", className: "hint mono genesis-digest" }),
      el("div", { className: "genesis-controls" }, [
        el("label", { className: "genesis-load" }, [el("span", { text: "Load genesis.json: " }), fileInput]),
        el("details", {}, [el("summary", { text: "or paste it" }), pasted, pasteButton]),
        el("div", { className: "input-row" }, [digestInput, fetchButton]),
      ]),
      errorNode,
      el("p", {
        className: "hint",
        text: "Accounts and transfers are read with their proofs and checked here: the objects against the ledger's digest, the digest against a header, and the header against the signatures of a quorum of the genesis validators. A validator that serves the genesis could serve a false one: fetch it only with a digest you got elsewhere, or compare the digest shown. See docs/DASHBOARD.md.",
      }),
    );
    renderPanel();
  }

  async function start() {
    await restoreGenesis();
    restored();
    const panel = document.getElementById("verify-panel");
    if (panel) buildPanel(panel);
    changed();
  }

  window.TallyVerify = {
    show,
    withProof: (path) => path + (path.includes("?") ? "&" : "?") + "proof=true",
    // For the panel's users and for tests.
    blake3,
    hex: { from: (hex) => fromHex(hex, "the input"), to: toHex },
    parseGenesis,
    adoptGenesis,
    forgetGenesis,
    genesis: () => state.genesis,
    verifyReceipt: async (hex, genesis) => verifyReceipt(fromHex(hex, "the receipt"), genesis || state.genesis),
    check,
    Unverified,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
