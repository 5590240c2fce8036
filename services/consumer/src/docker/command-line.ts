import { JobFailure } from '../jobs/job-failure.js';

/**
 * Splits a command string into arguments the way docker-py does (Python's `shlex.split`, POSIX mode):
 * whitespace separates, single quotes keep everything, double quotes keep everything but `\"`, `\\`, `\$`
 * and `` \` ``, a backslash outside quotes escapes the next character. Unbalanced quotes are refused.
 */
export function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line.charAt(i);
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else current += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && i + 1 < line.length && '"\\$`'.includes(line.charAt(i + 1)))
        current += line.charAt(++i);
      else current += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === '\\' && i + 1 < line.length) {
      current += line.charAt(++i);
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new JobFailure('error', `unbalanced ${quote} quote in the command line`);
  if (inWord) args.push(current);
  return args;
}
