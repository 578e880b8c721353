// The reference side of tminus's length tests, run by Node (tests/reference/node.py).
//
//   node runner.cjs NODE_MODULES count   one JSON text per line on stdin; one line out
//                                        per text: {"x": [weightedLength, valid],
//                                        "bluesky": graphemeLength}
//   node runner.cjs NODE_MODULES data    the reference's own data, as JSON, for
//                                        tests/reference/regen.py
//
// One process answers a whole corpus: starting Node per text would cost seconds.
'use strict';
const path = require('path');
const readline = require('readline');

const [modules, mode] = process.argv.slice(2);
// Resolved from the cache folder (not from beside this file), honouring each package's
// own entry points.
const load = (name) => require(require.resolve(name, { paths: [path.resolve(modules)] }));

if (mode === 'data') {
  // The TLD lists twitter-text was built from (its regexes are generated from
  // tld_lib.yml) and twemoji-parser's emoji regex, as the package ships them.
  const alternatives = (regex) => {
    const m = /^\(\?:\(\?:(.*)\)\(\?=\[\^0-9a-zA-Z@\+-\]\|\$\)\)$/.exec(regex.source);
    if (!m) throw new Error(`unexpected TLD regex shape: ${regex.source.slice(0, 80)}`);
    return m[1].split('|');
  };
  const twemoji = load('twemoji-parser/package.json');
  const twitterText = load('twitter-text/package.json');
  process.stdout.write(JSON.stringify({
    twitter_text_version: twitterText.version,
    twemoji_parser_version: twemoji.version,
    gtld: alternatives(load('twitter-text/dist/regexp/validGTLD.js')),
    cctld: alternatives(load('twitter-text/dist/regexp/validCCTLD.js')),
    emoji_regex: load('twemoji-parser/dist/lib/regex.js').default.source,
  }) + '\n');
} else if (mode === 'count') {
  const twitter = load('twitter-text');
  const { RichText } = load('@atproto/api');
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  lines.on('line', (line) => {
    const text = JSON.parse(line);
    const x = twitter.parseTweet(text);
    out.push(JSON.stringify({
      x: [x.weightedLength, x.valid],
      bluesky: new RichText({ text }).graphemeLength,
    }));
  });
  lines.on('close', () => process.stdout.write(out.join('\n') + (out.length ? '\n' : '')));
} else {
  process.stderr.write('usage: node runner.cjs NODE_MODULES count|data\n');
  process.exit(2);
}
