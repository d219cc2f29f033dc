// name: entities_by_quality
// description: Entities mentioned in high- versus low-quality videos (latest profiles), with the share of each.
// param: high_min int[1..5] 4 lowest GQS counted as high quality
// param: low_max int[1..5] 2 highest GQS counted as low quality
// param: min_videos int[1..1000] 1 entities mentioned in fewer videos are left out
// param: limit int[1..200] 25 how many entities to return

// Each video's latest profile gives its quality band; videos in the middle band are left out.
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})
WHERE p.quality >= $high_min OR p.quality <= $low_max
// Affirmative mentions only: "this is not glaucoma" is not a video about glaucoma.
MATCH (v)-[m:MENTIONS]->(e:Entity)
WHERE NOT coalesce(m.negated, false)
// Count each video once per entity, split by band.
WITH e, count(DISTINCT CASE WHEN p.quality >= $high_min THEN v END) AS high,
        count(DISTINCT CASE WHEN p.quality <= $low_max THEN v END) AS low
WHERE high + low >= $min_videos
RETURN e.id AS id, e.name AS name, e.name_zh AS name_zh, high, low,
       // share of the entity's videos that are high quality (1.0 = only in good videos)
       toFloat(high) / (high + low) AS high_share
// Most discriminating first (by how lopsided the counts are), then by volume.
ORDER BY abs(high - low) DESC, high + low DESC, id
LIMIT $limit
