// Async tasks run one after another in the order given: the one writer of a file, whoever asks it to write.

export class Serial {
  private tail: Promise<unknown> = Promise.resolve()

  /** Runs `task` once every task given before has ended (whether it failed or not). */
  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task)
    this.tail = run.catch(() => undefined)
    return run
  }

  /** Resolves once every task given so far has ended. */
  async idle(): Promise<void> {
    await this.tail
  }
}
