// Narration of the Kubernetes node scenario: `make demo` prints each
// step with the commands and their real output; the end-to-end test writes
// the same text to a file in the VM run's directory, for reading a failure.

import { appendFileSync } from 'node:fs';

export interface Narrator {
  /** Starts a numbered step: a title, and what the step shows. */
  step(title: string, purpose: string): void;
  /** A command as typed in a shell, and everything it printed. */
  shell(command: string, output: string): void;
  /** A remark between commands. */
  note(text: string): void;
}

/** Prints to a terminal: bold step titles when it is one. Steps are numbered from firstStep. */
export function terminalNarrator(out: NodeJS.WriteStream, firstStep = 1): Narrator {
  const bold = (text: string): string => (out.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
  let number = firstStep - 1;
  return {
    step(title, purpose) {
      number += 1;
      out.write(`\n${bold(`== ${number}. ${title}`)}\n${purpose}\n`);
    },
    shell(command, output) {
      out.write(`\n$ ${command}\n${withNewline(output)}`);
    },
    note(text) {
      out.write(`${text}\n`);
    },
  };
}

/** Appends to a file, so a failed test leaves the story up to the failure. */
export function fileNarrator(path: string): Narrator {
  const write = (text: string): void => appendFileSync(path, text);
  return {
    step: (title, purpose) => write(`\n== ${title}\n${purpose}\n`),
    shell: (command, output) => write(`\n$ ${command}\n${withNewline(output)}`),
    note: (text) => write(`${text}\n`),
  };
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
