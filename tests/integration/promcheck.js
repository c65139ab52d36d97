#!/usr/bin/env node
// promcheck.js - a strict validator of the Prometheus text exposition format
// 0.0.4, for rpcpool's tests (no dependencies).
//
//   node tests/integration/promcheck.js [FILE|-]     exit 0 when valid, 1 with the errors
//   const { check, parse } = require('./promcheck.js');
//   check(text) -> { ok, errors: [..], families: Map(name -> {type, help, samples: [..]}) }
//   parse(text) -> the samples [{name, labels: {..}, value, line}] (throws when invalid)
//
// What it checks:
//   - every line is blank, a comment, `# HELP name text`, `# TYPE name type`, or a
//     sample `name{label="value",...} value [timestamp]` with valid metric and label
//     names, label values quoted with only \\ \" \n escapes, valid UTF-8, a value Go's
//     ParseFloat accepts (NaN, +Inf, -Inf included) and an optional integer timestamp;
//   - the text ends with a line feed;
//   - at most one HELP and one TYPE per family, both before its first sample, with a
//     known type; with requireHelpType (default true) every family has both;
//   - the samples of a family are contiguous (no family appears twice);
//   - no series (name + label set) appears twice; no label name repeats in a sample;
//   - counters are >= 0 (and not NaN);
//   - histograms: `le` only on _bucket samples; per label set the buckets have strictly
//     increasing le, cumulative (non-decreasing) counts, end with le="+Inf", and the +Inf
//     bucket equals _count; a _sum and a _count exist for every bucket series;
//   - summaries: quantile labels in [0, 1]; `le`/`quantile` labels nowhere else.
'use strict';

const fs = require('node:fs');

const METRIC_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const FLOAT_RE = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)$/;

// Parse a sample value as Go's strconv.ParseFloat would; undefined when invalid.
function parseValue(s) {
  if (!FLOAT_RE.test(s)) return undefined;
  if (/^[+]?inf$/i.test(s)) return Infinity;
  if (/^-inf$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  return Number(s);
}

// Parse the sample line L into {name, labels, value, timestamp}; throws with the reason.
function parseSampleLine(l) {
  let i = 0;
  const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l);
  if (!m) throw new Error('bad metric name');
  const name = m[0];
  i = name.length;
  const labels = {};
  const order = [];
  if (l[i] === '{') {
    i++;
    for (;;) {
      while (l[i] === ' ') i++;
      if (l[i] === '}') {
        i++;
        break;
      }
      const lm = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(l.slice(i));
      if (!lm) throw new Error(`bad label name at column ${i + 1}`);
      const lname = lm[0];
      i += lname.length;
      while (l[i] === ' ') i++;
      if (l[i] !== '=') throw new Error(`expected = after label ${lname}`);
      i++;
      while (l[i] === ' ') i++;
      if (l[i] !== '"') throw new Error(`label ${lname}: value not quoted`);
      i++;
      let v = '';
      for (;;) {
        if (i >= l.length) throw new Error(`label ${lname}: unterminated value`);
        const c = l[i];
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          const e = l[i + 1];
          if (e === '\\') v += '\\';
          else if (e === '"') v += '"';
          else if (e === 'n') v += '\n';
          else throw new Error(`label ${lname}: bad escape \\${e === undefined ? '' : e}`);
          i += 2;
          continue;
        }
        v += c;
        i++;
      }
      if (Object.prototype.hasOwnProperty.call(labels, lname)) throw new Error(`label ${lname} repeated`);
      if (lname.startsWith('__')) throw new Error(`label ${lname} is reserved`);
      labels[lname] = v;
      order.push(lname);
      while (l[i] === ' ') i++;
      if (l[i] === ',') {
        i++;
        continue;
      }
      if (l[i] === '}') {
        i++;
        break;
      }
      throw new Error(`expected , or } at column ${i + 1}`);
    }
  }
  const rest = l.slice(i);
  const parts = rest.split(/[ \t]+/);
  if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error('expected " value [timestamp]"');
  const value = parseValue(parts[1]);
  if (value === undefined) throw new Error(`bad value ${JSON.stringify(parts[1])}`);
  let timestamp;
  if (parts.length === 3) {
    if (!/^-?\d+$/.test(parts[2])) throw new Error(`bad timestamp ${JSON.stringify(parts[2])}`);
    timestamp = Number(parts[2]);
  }
  return { name, labels, order, value, timestamp };
}

function seriesKey(name, labels, skip) {
  const keys = Object.keys(labels).filter((k) => k !== skip).sort();
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

// The family a sample name belongs to, given the TYPEs seen so far.
function familyOf(name, families) {
  if (families.has(name)) return name;
  for (const suf of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suf)) {
      const base = name.slice(0, -suf.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || (f.type === 'summary' && suf !== '_bucket'))) return base;
    }
  }
  return name;
}

function leValue(s) {
  return parseValue(s);
}

// Check TEXT; returns {ok, errors, families}.
function check(text, { requireHelpType = true } = {}) {
  const errors = [];
  const families = new Map();
  const err = (lineNo, msg) => errors.push(lineNo ? `line ${lineNo}: ${msg}` : msg);
  if (typeof text !== 'string') text = String(text);
  if (Buffer.from(text, 'utf8').toString('utf8') !== text || text.includes('\ufffd')) {
    err(0, 'text is not valid UTF-8 (or holds U+FFFD)');
  }
  if (text.length === 0) err(0, 'empty exposition');
  else if (!text.endsWith('\n')) err(0, 'the last line does not end with a line feed');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const seen = new Set();
  const closed = new Set();
  let current = null;
  const getFamily = (name) => {
    if (!families.has(name)) families.set(name, { name, type: undefined, help: undefined, samples: [] });
    return families.get(name);
  };
  const enter = (name, lineNo) => {
    if (current !== name) {
      if (closed.has(name)) err(lineNo, `family ${name} is not contiguous (appears again after ${current})`);
      if (current !== null) closed.add(current);
      current = name;
    }
  };
  lines.forEach((l, idx) => {
    const lineNo = idx + 1;
    if (/^\s*$/.test(l)) return;
    if (l.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(l);
      if (!m) return; // an ordinary comment
      const [, kind, name, rest] = m;
      if (!METRIC_RE.test(name)) {
        err(lineNo, `${kind} for an invalid metric name ${name}`);
        return;
      }
      const f = getFamily(name);
      enter(name, lineNo);
      if (f.samples.length) err(lineNo, `${kind} for ${name} after its samples`);
      if (kind === 'HELP') {
        if (f.help !== undefined) err(lineNo, `second HELP for ${name}`);
        const h = rest === undefined ? '' : rest;
        if (/\\(?![\\n])/.test(h)) err(lineNo, `HELP for ${name}: bad escape`);
        f.help = h;
      } else {
        if (f.type !== undefined) err(lineNo, `second TYPE for ${name}`);
        if (!TYPES.has(rest)) err(lineNo, `TYPE for ${name}: unknown type ${JSON.stringify(rest)}`);
        f.type = rest;
      }
      return;
    }
    let s;
    try {
      s = parseSampleLine(l);
    } catch (e) {
      err(lineNo, `${e.message}: ${l}`);
      return;
    }
    s.line = lineNo;
    const fname = familyOf(s.name, families);
    const f = getFamily(fname);
    enter(fname, lineNo);
    f.samples.push(s);
    const key = seriesKey(s.name, s.labels);
    if (seen.has(key)) err(lineNo, `duplicate series ${key}`);
    seen.add(key);
    const type = f.type || 'untyped';
    if (type === 'counter' && !(s.value >= 0)) err(lineNo, `counter ${s.name} is ${s.value}`);
    if ('le' in s.labels && !(type === 'histogram' && s.name === `${fname}_bucket`)) {
      err(lineNo, `label le outside a histogram's _bucket: ${l}`);
    }
    if ('quantile' in s.labels && !(type === 'summary' && s.name === fname)) {
      err(lineNo, `label quantile outside a summary: ${l}`);
    }
    if (type === 'histogram' && s.name === fname) err(lineNo, `histogram ${fname} has a bare sample`);
  });

  for (const f of families.values()) {
    if (requireHelpType && f.help === undefined) err(0, `family ${f.name} has no HELP`);
    if (requireHelpType && f.type === undefined) err(0, `family ${f.name} has no TYPE`);
    if (f.type === 'histogram') checkHistogram(f, err);
    if (f.type === 'summary') {
      for (const s of f.samples) {
        if (s.name === f.name) {
          const q = parseValue(s.labels.quantile || '');
          if (q === undefined || !(q >= 0 && q <= 1)) err(s.line, `summary ${f.name}: bad quantile`);
        }
      }
    }
  }
  return { ok: errors.length === 0, errors, families };
}

// Per label set (without le): buckets increasing and cumulative, +Inf last and
// equal to _count; _sum and _count present.
function checkHistogram(f, err) {
  const groups = new Map();
  const group = (labels) => {
    const k = seriesKey('', labels, 'le');
    if (!groups.has(k)) groups.set(k, { buckets: [], sum: undefined, count: undefined, line: 0 });
    return groups.get(k);
  };
  for (const s of f.samples) {
    const g = group(s.labels);
    if (s.name === `${f.name}_bucket`) {
      if (!('le' in s.labels)) {
        err(s.line, `${s.name} without le`);
        continue;
      }
      const le = leValue(s.labels.le);
      if (le === undefined || Number.isNaN(le)) err(s.line, `${s.name}: bad le ${JSON.stringify(s.labels.le)}`);
      g.buckets.push({ le, value: s.value, line: s.line });
    } else if (s.name === `${f.name}_sum`) {
      g.sum = s.value;
    } else if (s.name === `${f.name}_count`) {
      g.count = s.value;
      g.line = s.line;
    }
  }
  for (const [k, g] of groups) {
    const where = `histogram ${f.name}${k.slice(0) || ''}`;
    if (!g.buckets.length) {
      err(g.line, `${where}: no buckets`);
      continue;
    }
    for (let i = 1; i < g.buckets.length; i++) {
      const a = g.buckets[i - 1];
      const b = g.buckets[i];
      if (!(b.le > a.le)) err(b.line, `${where}: le ${b.le} does not increase after ${a.le}`);
      if (b.value < a.value) err(b.line, `${where}: bucket le=${b.le} (${b.value}) < le=${a.le} (${a.value})`);
    }
    const last = g.buckets[g.buckets.length - 1];
    if (last.le !== Infinity) err(last.line, `${where}: last bucket is le=${last.le}, not +Inf`);
    if (g.count === undefined) err(last.line, `${where}: no _count`);
    else if (last.le === Infinity && last.value !== g.count) {
      err(last.line, `${where}: +Inf bucket ${last.value} != _count ${g.count}`);
    }
    if (g.sum === undefined) err(last.line, `${where}: no _sum`);
  }
}

// The samples of a valid TEXT; throws an Error listing the problems otherwise.
function parse(text, opts) {
  const r = check(text, opts);
  if (!r.ok) throw new Error(`invalid Prometheus text:\n${r.errors.slice(0, 20).join('\n')}`);
  const out = [];
  for (const f of r.families.values()) for (const s of f.samples) out.push({ ...s, family: f.name, type: f.type });
  return out;
}

module.exports = { check, parse, parseSampleLine };

if (require.main === module) {
  const file = process.argv[2] || '-';
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  const r = check(text);
  if (r.ok) {
    let n = 0;
    for (const f of r.families.values()) n += f.samples.length;
    process.stdout.write(`ok: ${r.families.size} families, ${n} samples\n`);
    process.exit(0);
  }
  process.stderr.write(`${r.errors.join('\n')}\n`);
  process.exit(1);
}
