// name: entity_videos
// description: Videos that mention an entity (affirmatively), with the surface used and the latest profile's quality.
// param: entity_id id - the entity (e.g. OVP:presbyopia)
// param: limit int[1..200] 20 how many videos to return

MATCH (e:Entity {id: $entity_id})<-[m:MENTIONS]-(v:Video)
WHERE NOT coalesce(m.negated, false)
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
// One row per video, with every way its text named the entity and where (title, caption, hashtags, transcript;
// null for profiles written before mentions said so).
WITH v, p, collect(DISTINCT m.surface) AS surfaces, collect(DISTINCT m.field) AS fields
RETURN v.id AS video_id, v.title AS title, v.platform AS platform, surfaces, fields,
       p.quality AS quality, p.popularity_pct AS popularity_pct
ORDER BY popularity_pct DESC, video_id
LIMIT $limit
