// What the tool asks of git, over simple-git: provenance for manifests and ledgers, tags for releases.
import {simpleGit} from 'simple-git'

export interface GitInfo {
  commit?: string
  branch?: string
  dirty: boolean
  remote?: string
  user?: string
}

export async function gitInfo(dir: string): Promise<GitInfo | undefined> {
  const git = simpleGit({baseDir: dir})
  try {
    if (!(await git.checkIsRepo())) return undefined
  } catch {
    return undefined
  }
  const [commit, branch, status, remotes, user] = await Promise.all([
    git.revparse(['HEAD']).catch(() => undefined),
    git.revparse(['--abbrev-ref', 'HEAD']).catch(() => undefined),
    git.status().catch(() => undefined),
    git.getRemotes(true).catch(() => []),
    git.getConfig('user.name').catch(() => undefined),
  ])
  const origin = remotes.find((r) => r.name === 'origin') ?? remotes[0]
  return {
    commit: commit?.trim() || undefined,
    branch: branch?.trim() || undefined,
    dirty: status ? !status.isClean() : false,
    remote: origin?.refs.fetch || undefined,
    user: user?.value ?? undefined,
  }
}

export async function gitUser(dir: string): Promise<string | undefined> {
  try {
    const value = await simpleGit({baseDir: dir}).getConfig('user.name')
    return value.value ?? undefined
  } catch {
    return undefined
  }
}

export async function createTag(dir: string, tag: string, message: string): Promise<void> {
  await simpleGit({baseDir: dir}).addAnnotatedTag(tag, message)
}
