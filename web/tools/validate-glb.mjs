// Validate glb files with the Khronos glTF-Validator (the npm package is a library, not a CLI).
// Usage: node web/tools/validate-glb.mjs FILE.glb [FILE.glb ...]
// Prints one JSON line per file: {"file", "numErrors", "numWarnings", "numInfos", "numHints",
// "messages": [{code, severity, pointer, message}]}; exits 1 if any file has an error
// (or cannot be read), 2 on bad usage.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import validator from 'gltf-validator';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node web/tools/validate-glb.mjs FILE.glb [FILE.glb ...]');
  process.exit(2);
}

let failed = false;
for (const file of files) {
  let line;
  try {
    const bytes = new Uint8Array(await readFile(file));
    const report = await validator.validateBytes(bytes, {
      uri: path.basename(file),
      maxIssues: 100,
      externalResourceFunction: (uri) =>
        readFile(path.resolve(path.dirname(file), decodeURIComponent(uri))),
    });
    const issues = report.issues;
    line = {
      file,
      numErrors: issues.numErrors,
      numWarnings: issues.numWarnings,
      numInfos: issues.numInfos,
      numHints: issues.numHints,
      messages: issues.messages.map(({ code, severity, pointer, message }) => ({
        code,
        severity,
        pointer,
        message,
      })),
    };
    failed ||= issues.numErrors > 0;
  } catch (error) {
    const messages = [{ code: 'UNREADABLE', severity: 0, message: String(error) }];
    line = { file, numErrors: 1, numWarnings: 0, numInfos: 0, numHints: 0, messages };
    failed = true;
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
