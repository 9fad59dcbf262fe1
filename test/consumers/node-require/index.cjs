// A CommonJS project: require() of the ES module package (Node >= 20.19 loads it synchronously).
const assert = require('node:assert/strict')
const { Understudy, ConfigError, seededRandom } = require('understudy-ha')
const { memoryPair } = require('understudy-ha/adapters/memory')

assert.equal(typeof Understudy.start, 'function')
assert.equal(typeof seededRandom(1)(), 'number')
assert.equal(new ConfigError('x').name, 'ConfigError')

class Todo {}
const [a] = memoryPair()
Understudy.start({ group: 'g', transport: a, role: 'active', classes: [Todo] }).then(
  () => assert.fail('an unnamed class in the array form must be refused'),
  async (err) => {
    assert.ok(err instanceof ConfigError && /minifiers rename classes/.test(err.message))
    const ha = await Understudy.start({ group: 'g', transport: memoryPair()[0], role: 'active', classes: { Todo } })
    ha.register('app', { t: new Todo() })
    await ha.close()
    console.log('node require(): ok')
  },
)
