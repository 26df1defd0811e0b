import { CacheError } from '../../errors.js'
import { aclRule } from '../../security/acl_rule.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { note, out, outJson } from '../output.js'

export const acl: Command = {
  name: 'acl',
  offline: true,
  summary: "Print the least-privilege Redis ACL rule of a namespace (connects to nothing)",
  usage: 'acl --namespace NS [--user NAME] [--legacy-channel] [--rate-limit] [--keep-passwords] [--json]',
  help: `Prints the ACL SETUSER rule a user needs to run nearcache on namespace NS
(and its child namespaces, NS:*) and nothing else: only the commands nearcache
and ioredis send, only NS's keys (data, tag epochs, stampede locks; the health
key read-only) and only the invalidation channel of NS's root. Redis 7.0 or later.

  --user NAME        The ACL user (default nearcache-<NS>)
  --legacy-channel   Also the pre-1.0 channel __nc|inv (invalidation.legacyChannel);
                     it carries the changed key names of every namespace: grant it
                     only for a rolling upgrade
  --rate-limit       Also the distributed rate limiter's keys (__nc|rl|NS|*)
  --keep-passwords   Start with 'resetkeys resetchannels clearselectors -@all'
                     instead of 'reset', which also removes every password: use it
                     to re-apply the rule to an existing user
  --json             The rule as a JSON array of ACL SETUSER arguments (user first)

The rule holds no password, and this command never makes one up. Add yours to
the same command: '>PASSWORD', or '#<sha256 hex of the password>' to keep the
clear text out of the command. ACL rules are per server: on a Cluster, apply the
rule on every node (masters and replicas), and ACL SAVE where an ACL file is used.

Examples:
  nearcache acl --namespace shop
  nearcache acl --namespace shop --json | jq -r '.[]' | xargs redis-cli -p 7000 ACL SETUSER`,
  options: {
    user: { type: 'string' },
    'legacy-channel': { type: 'boolean' },
    'rate-limit': { type: 'boolean' },
    'keep-passwords': { type: 'boolean' },
  },
  async run({ globals, values }) {
    if (!globals.namespaceGiven) throw new UsageError('say which namespace: --namespace NS', 'acl')
    const user = str(values.user)
    let rule
    try {
      rule = aclRule({
        namespace: globals.namespace,
        ...(user !== undefined ? { user } : {}),
        legacyChannel: values['legacy-channel'] === true,
        rateLimit: values['rate-limit'] === true,
        keepPasswords: values['keep-passwords'] === true,
      })
    } catch (err) {
      if (err instanceof CacheError) throw new UsageError(err.message.replace(/\.$/, ''), 'acl')
      throw err
    }
    if (globals.json) {
      await outJson(rule.args)
      return 0
    }
    await out(`ACL SETUSER ${rule.args.join(' ')}`)
    note(
      `# No password in this rule: append '>PASSWORD' (or '#<sha256 hex>') to it.\n` +
        `# On a Cluster, run it on every node. Keys: ${rule.keys.join(' ')}; channel: ${rule.channels.join(' ')}.`,
    )
    return 0
  },
}
