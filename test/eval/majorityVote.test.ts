import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { majorityVote } from '../../src/eval/majorityVote.ts';

describe('majorityVote', () => {
  it('groups equivalent spellings into one bloc', () => {
    const v = majorityVote(['3', '1/2', '0.5', '3', '\\frac12', '7']);
    assert.equal(v.answer, '1/2');
    assert.equal(v.count, 3);
    assert.deepEqual(
      v.clusters.map((c) => [c.representative, c.indices]),
      [
        ['3', [0, 3]],
        ['1/2', [1, 2, 4]],
        ['7', [5]],
      ],
    );
  });

  it('breaks ties by earliest first occurrence', () => {
    assert.equal(majorityVote(['3', '5', '5', '3']).answer, '3');
    assert.equal(majorityVote(['5', '3', '3', '5']).answer, '5');
    // 5 (x2) against 3 (x2, spelt 6/2 first): the bloc whose first member came first wins.
    const v = majorityVote(['\\frac{6}{2}', '5', '3', '5']);
    assert.equal(v.answer, '\\frac{6}{2}');
    assert.equal(v.count, 2);
    // A later bloc must be strictly larger to win.
    assert.equal(majorityVote(['1', '2', '2']).answer, '2');
  });

  it('ignores missing answers and reports correctness against gold', () => {
    const v = majorityVote([null, '', '4', undefined, '4.0', '5'], '4');
    assert.equal(v.answer, '4');
    assert.equal(v.count, 2);
    assert.equal(v.correct, true);
    assert.equal(majorityVote(['5', '5', '4'], '4').correct, false);
    const none = majorityVote([null, null], '1');
    assert.deepEqual(none, { answer: null, count: 0, clusters: [], correct: false });
    assert.equal('correct' in majorityVote(['1']), false);
  });

  it('clusters sets, intervals and text by equivalence too', () => {
    const v = majorityVote(['\\{1,2\\}', '(1,2)', '2, 1', '\\text{East}', 'east', 'EAST']);
    assert.equal(v.count, 3);
    assert.equal(v.answer, '\\text{East}');
    assert.deepEqual(
      v.clusters.map((c) => c.indices),
      [[0, 2], [1], [3, 4, 5]],
    );
  });
});
